-- Example ClickHouse queries for the P2P market (HL-UC02). Tables are the sinks of the market topics, with columns
-- derived from the Avro contracts (edream/clickhouse.py), ReplacingMergeTree, so read them with FINAL:
--   market_orders      <- market.orders.v1       (MarketOrder)     order_by [session_id, order_id]
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
-- Submitted orders per slot and side (all orders on market.orders.v1, before validation).
SELECT
    slot_start,
    side,
    count() AS orders,
    sum(quantity_wh) AS total_wh,
    min(limit_price_micro_per_kwh) AS min_price,
    max(limit_price_micro_per_kwh) AS max_price
FROM market_orders FINAL
GROUP BY slot_start, side
ORDER BY slot_start, side;
