-- The chat request of chat.lua with an API key, for servers with keys and without.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-key-0007"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you?"}]}'
