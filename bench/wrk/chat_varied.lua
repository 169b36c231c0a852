-- POST a non-streaming chat completion whose prompt differs on every request (a counter in
-- the text), as Locust- and guidellm-style load tools send: no reply can be replayed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you? '
    .. 'This is request number ' .. counter .. '."}]}'
  return wrk.format(nil, nil, nil, body)
end
