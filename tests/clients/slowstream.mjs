// A streaming OpenAI-compatible model that takes its time: "The answer"
// at once, then GAP_MS later " is 4." (tests/integration/clients.sh: the
// first token must reach forge's client long before the model ends).
import http from "node:http";
const port = Number(process.argv[2]), gap = Number(process.argv[3] ?? 400);
http.createServer((req, res) => {
	if (req.url === "/healthz") {
		res.end("ok");
		return;
	}
	let body = "";
	req.on("data", (d) => body += d);
	req.on("end", () => {
		const q = JSON.parse(body || "{}");
		const chunk = (delta, fin) => "data: " + JSON.stringify({ id: "slow-1", object: "chat.completion.chunk",
			created: 0, model: "slow", choices: [{ index: 0, delta, finish_reason: fin ?? null }] }) + "\n\n";
		if (!q.stream) {
			res.setHeader("Content-Type", "application/json");
			res.end(JSON.stringify({ id: "slow-1", object: "chat.completion", created: 0, model: "slow",
				choices: [{ index: 0, message: { role: "assistant", content: "The answer is 4." }, finish_reason: "stop" }],
				usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } }));
			return;
		}
		res.writeHead(200, { "Content-Type": "text/event-stream" });
		res.write(chunk({ role: "assistant", content: "" }));
		res.write(chunk({ content: "The answer" }));
		setTimeout(() => {
			res.write(chunk({ content: " is 4." }));
			res.write(chunk({}, "stop"));
			res.write("data: " + JSON.stringify({ id: "slow-1", object: "chat.completion.chunk", created: 0,
				model: "slow", choices: [], usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } }) + "\n\n");
			res.end("data: [DONE]\n\n");
		}, gap);
	});
}).listen(port, "127.0.0.1");
