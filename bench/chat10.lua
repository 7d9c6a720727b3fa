-- wrk script: a chat completion with 10 messages of history (bench/chat_history.sh)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local m = {}
m[1] = '{"role":"system","content":"You are a support agent for a shop. Answer briefly and politely."}'
for i = 1, 4 do
	m[#m + 1] = '{"role":"user","content":"Question ' .. i .. ': where is my order number 12345, placed last week?"}'
	m[#m + 1] = '{"role":"assistant","content":"Your order ' .. i .. ' left the warehouse yesterday and should arrive within two days."}'
end
m[#m + 1] = '{"role":"user","content":"what is 2+2?"}'
wrk.body = '{"model":"forge/react@s","messages":[' .. table.concat(m, ",") .. ']}'
