-- wrk script for licensd: POST bodies spread over many license keys.
--   wrk -s bench/load.lua URL -- MODE [RATE]
-- MODE: validate (default) | validate_fp (with fingerprint "bench-dev", activated on every
-- key of the file by bench/cache.sh) | activate (a new fingerprint each call) | healthz (GET)
-- RATE: optional target requests/s for the whole run (paced with wrk's delay()).
-- Keys come from $KEYS_FILE (one key a line, written by bench/run.sh).
-- Prints one machine-readable line: RESULT rps=... p50_ms=... p99_ms=...
local keys = {}
local counter = 0
local mode, path, pace_ms, tag

function init(args)
  mode = args[1] or "validate"
  local rate = tonumber(args[2] or "")
  local conns = tonumber(os.getenv("WRK_CONNECTIONS") or "1")
  if rate and rate > 0 then pace_ms = conns * 1000 / rate end
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
  tag = string.format("%x%x", os.time(), math.random(1, 2 ^ 30))
  if mode ~= "healthz" then
    for line in io.lines(os.getenv("KEYS_FILE") or "keys.txt") do
      if #line > 0 then keys[#keys + 1] = line end
    end
  end
  path = ({ validate = "/v1/licenses/validate", validate_fp = "/v1/licenses/validate",
            activate = "/v1/licenses/activate",
            healthz = "/healthz" })[mode]
end

function delay()
  if pace_ms then return pace_ms * (0.5 + math.random()) end
  return 0
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  if mode == "healthz" then return wrk.format("GET", path) end
  local key = keys[math.random(#keys)]
  local body
  if mode == "activate" then
    counter = counter + 1
    body = '{"key":"' .. key .. '","fingerprint":"bench-' .. tag .. '-' .. counter .. '"}'
  elseif mode == "validate_fp" then
    body = '{"key":"' .. key .. '","fingerprint":"bench-dev"}'
  else
    body = '{"key":"' .. key .. '"}'
  end
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status))
end
