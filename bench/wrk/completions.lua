-- A legacy text completion (16 tokens, OpenAI's default length).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"gpt-4o-mini","prompt":"Say this is a test"}'
