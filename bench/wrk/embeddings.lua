-- One input, base64, as the OpenAI Python SDK asks for embeddings.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"text-embedding-3-small","input":"The food was delicious and the waiter was friendly.","encoding_format":"base64"}'
