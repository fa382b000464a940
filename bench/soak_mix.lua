-- The mixed load of bench/soak.py for wrk: every request is drawn at random from the lines
-- of the file named by the script's first argument, "METHOD<TAB>PATH<TAB>CONTENT-TYPE<TAB>BODY"
-- (a kind repeated as often as its share of the load). Counts the answers by class.
local pool = {}
s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    local method, path, ctype, body = line:match("^(%S+)\t(%S+)\t([^\t]*)\t(.*)$")
    if method then
      local headers = { ["Accept-Encoding"] = "br, gzip" }
      if ctype ~= "" then
        headers["Content-Type"] = ctype
      end
      pool[#pool + 1] = wrk.format(method, path, headers, body ~= "" and body or nil)
    end
  end
  math.randomseed(tonumber(args[2] or "1"))
end

function request()
  return pool[math.random(#pool)]
end

function response(status)
  if status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  elseif status >= 300 then
    s3xx = s3xx + 1
  else
    s2xx = s2xx + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done()
  local t = { 0, 0, 0, 0 }
  for _, thread in ipairs(threads) do
    t[1] = t[1] + thread:get("s2xx")
    t[2] = t[2] + thread:get("s3xx")
    t[3] = t[3] + thread:get("s4xx")
    t[4] = t[4] + thread:get("s5xx")
  end
  io.write(string.format("statuses 2xx=%d 3xx=%d 4xx=%d 5xx=%d\n", t[1], t[2], t[3], t[4]))
end
