-- Example ClickHouse queries over the flex sinks (tables from streams/flex/sinks.py).
-- ReplacingMergeTree: use FINAL (or GROUP BY the dedup key) so replays are not double counted.
-- Times are DateTime64(3, 'UTC'), money Int64 micro-units, energy Int64 Wh.

-- 1. Requests by area and direction with total requested kW
SELECT area_id, direction, count() AS requests,
       sum(arraySum(x -> JSONExtractFloat(x, 'kw'), JSONExtractArrayRaw(slots))) AS requested_kw_slots
FROM flex_requests FINAL
GROUP BY area_id, direction
ORDER BY requests DESC;

-- 2. Offers that could not cover their request (stated shortfall)
SELECT request_id, status, cost_micro / 1e6 AS cost_eur,
       arraySum(x -> JSONExtractFloat(x, 'shortfall_kw'), JSONExtractArrayRaw(slots)) AS shortfall_kw_slots
FROM flex_offers FINAL
WHERE status != 'FULL'
ORDER BY created_at DESC;

-- 3. Latest revision of each order and how often it was amended by re-dispatch
SELECT order_id, max(revision) AS revisions, argMax(status, revision) AS status,
       argMax(length(JSONExtractArrayRaw(allocations)), revision) AS allocations
FROM flex_orders FINAL
GROUP BY order_id
ORDER BY revisions DESC;

-- 4. Deviation detection: first PROJECTED shortfall per prosumer and slot, seconds into the slot
SELECT order_id, prosumer_id, slot_start,
       min(ts) AS first_detected,
       dateDiff('second', slot_start, min(ts)) AS seconds_into_slot
FROM flex_deviations FINAL
WHERE kind = 'PROJECTED' AND verdict = 'SHORTFALL'
GROUP BY order_id, prosumer_id, slot_start
ORDER BY first_detected;

-- 5. Final verdicts per slot: delivered vs target for the whole order
SELECT order_id, slot_start,
       round(sum(target_kw), 3) AS target_kw, round(sum(delivered_kw), 3) AS delivered_kw,
       countIf(verdict = 'WITHIN') AS within, countIf(verdict != 'WITHIN') AS outside
FROM flex_deviations FINAL
WHERE kind = 'FINAL'
GROUP BY order_id, slot_start
ORDER BY order_id, slot_start;

-- 6. Settlement per prosumer: incentives, penalties, net (EUR) and delivered energy
SELECT party_id,
       sumIf(amount_micro, amount_micro > 0) / 1e6 AS incentives_eur,
       -sumIf(amount_micro, amount_micro < 0) / 1e6 AS penalties_eur,
       sum(amount_micro) / 1e6 AS net_eur,
       sum(quantity_wh) AS delivered_wh
FROM settlement_flex FINAL
WHERE kind = 'FLEX'
GROUP BY party_id
ORDER BY net_eur DESC;

-- 7. Settlement per order and window (what would be Merkle-anchored)
SELECT reference_id AS order_id, window_id, count() AS records, sum(amount_micro) AS amount_micro
FROM settlement_flex FINAL
GROUP BY reference_id, window_id
ORDER BY window_id;
