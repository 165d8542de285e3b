-- Example ClickHouse queries for the P2P market (HL-UC02). Tables are the sinks of the market topics, with columns
-- derived from the Avro contracts (edream/clickhouse.py), ReplacingMergeTree, so read them with FINAL:
--   market_orders      <- market.orders.v1       (MarketOrder)     order_by [session_id, order_id]
--                         every SUBMITTED order, valid or not (see order_status for what became of it)
--   market_orders_accepted <- market.orders.accepted.v1 (MarketOrder) order_by [session_id, order_id]
--                         the orders that passed validation: the book that was cleared
--   rejections         <- platform.rejections.v1 (Rejection)      order_by [subject_kind, subject_id, code]
--                         refused orders have subject_kind 'MarketOrder', subject_id = order_id
--   market_clearing    <- market.clearing.v1     (ClearingResult)  order_by [session_id]
--   market_trades      <- market.trades.v1       (Trade)           order_by [session_id, trade_id]
--   market_settlement  <- settlement.market.v1   (Settlement)      order_by [window_id, settlement_id], version
-- Units: energy Wh, prices micro-units per kWh, money micro-units (divide by 1e6 for EUR).

-- name: price_history
-- Clearing price and volume per delivery slot.
SELECT
    slot_start,
    session_id,
    rule,
    price_micro_per_kwh,
    price_micro_per_kwh / 1e6 AS price_eur_per_kwh,
    cleared_wh,
    bid_wh,
    offer_wh,
    n_trades
FROM market_clearing FINAL
ORDER BY slot_start;

-- name: prosumer_pnl
-- Per-participant P&L over all settled slots (POOL = imbalance penalties collected).
SELECT
    party_id,
    count() AS slots,
    sum(quantity_wh) AS total_delivered_wh,
    sum(amount_micro) AS total_amount_micro,
    sum(amount_micro) / 1e6 AS amount_eur
FROM market_settlement FINAL
WHERE kind = 'MARKET'
GROUP BY party_id
ORDER BY party_id;

-- name: prosumer_daily_pnl
-- Per-participant daily statement (UTC days).
SELECT
    toDate(window_start) AS day,
    party_id,
    sum(amount_micro) AS day_amount_micro
FROM market_settlement FINAL
WHERE kind = 'MARKET'
GROUP BY day, party_id
ORDER BY day, party_id;

-- name: traded_volume_vwap
-- Energy bought and sold per participant and its volume-weighted average price (micro-units per kWh).
SELECT
    participant,
    sumIf(quantity_wh, side = 'BUY') AS bought_wh,
    sumIf(quantity_wh, side = 'SELL') AS sold_wh,
    intDiv(sum(quantity_wh * price_micro_per_kwh), sum(quantity_wh)) AS vwap_micro_per_kwh
FROM
(
    SELECT buyer_id AS participant, 'BUY' AS side, quantity_wh, price_micro_per_kwh FROM market_trades FINAL
    UNION ALL
    SELECT seller_id AS participant, 'SELL' AS side, quantity_wh, price_micro_per_kwh FROM market_trades FINAL
)
GROUP BY participant
ORDER BY participant;

-- name: book_depth
-- Accepted orders per slot and side (the validated book; rejected orders never enter it).
SELECT
    slot_start,
    side,
    count() AS orders,
    sum(quantity_wh) AS total_wh,
    min(limit_price_micro_per_kwh) AS min_price,
    max(limit_price_micro_per_kwh) AS max_price
FROM market_orders_accepted FINAL
GROUP BY slot_start, side
ORDER BY slot_start, side;

-- name: order_status
-- Every submitted order with what became of it: ACCEPTED (in the validated book), REJECTED (with the market's
-- code and reason), or PENDING (not processed yet). An accepted order wins over a rejection of the same id.
SELECT
    o.order_id AS order_id,
    o.session_id AS session_id,
    o.participant_id AS participant_id,
    o.side AS side,
    o.quantity_wh AS quantity_wh,
    o.limit_price_micro_per_kwh AS limit_price_micro_per_kwh,
    multiIf(a.order_id != '', 'ACCEPTED', r.subject_id != '', 'REJECTED', 'PENDING') AS status,
    if(a.order_id = '' AND r.subject_id != '', r.code, '') AS reject_code,
    if(a.order_id = '' AND r.subject_id != '', r.reason, '') AS reject_reason
FROM market_orders AS o FINAL
LEFT JOIN (SELECT DISTINCT order_id FROM market_orders_accepted FINAL) AS a ON a.order_id = o.order_id
LEFT JOIN
(
    SELECT subject_id, argMin(code, rejected_at) AS code, argMin(reason, rejected_at) AS reason
    FROM rejections FINAL
    WHERE subject_kind = 'MarketOrder'
    GROUP BY subject_id
) AS r ON r.subject_id = o.order_id
ORDER BY o.session_id, o.order_id;

-- name: grid_limits_cost
-- Sessions cleared within congestion limits (market config `network` section): volume and welfare (accepted bid
-- value minus accepted offer cost) against the unconstrained reference, and which limits bound.
SELECT
    slot_start,
    session_id,
    network_status,
    cleared_wh,
    reference_cleared_wh,
    welfare_micro,
    reference_welfare_micro,
    reference_welfare_micro - welfare_micro AS welfare_lost_micro,
    binding_limits
FROM market_clearing FINAL
WHERE network_status IS NOT NULL
ORDER BY slot_start;
