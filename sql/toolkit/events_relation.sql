-- The canonical events relation every toolkit query reads: one row per event with the columns
-- unit, ts, event_type, value, session_id, dim. Placeholders are validated identifiers of the
-- event source (workbench/toolkit/sources.py); the time filter is fixed text with bound values.
SELECT {unit} AS unit,
       e.{timestamp} AS ts,
       {event_type} AS event_type,
       {value} AS value,
       {session_id} AS session_id,
       {dim} AS dim
FROM {table} e{unit_join}
WHERE {time_filter}
