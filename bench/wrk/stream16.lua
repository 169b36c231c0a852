-- POST a zero-delay streaming chat completion of 16 tokens on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],"stream":true,"max_tokens":16}'
