-- wrk script: POST the first turn of the scripted ReAct conversation.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"mock","messages":[{"role":"user","content":"what is 2+2?"}]}'
