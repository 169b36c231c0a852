-- A Responses API stream with zero delay (16 output tokens).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","input":"Hello","stream":true,"max_output_tokens":16}'
