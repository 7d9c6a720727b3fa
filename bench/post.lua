-- wrk script: create a ReAct session through the gateway.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"what is 2+2?"}'
