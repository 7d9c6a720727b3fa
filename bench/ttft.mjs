// Time to first token: the same streaming model asked directly and through
// forge's /v1/chat/completions (forge/react@slow), interleaved, N each.
// Prints "direct_p50 direct_p99 forge_p50 forge_p99" in ms.
// Usage: node ttft.mjs MODEL_URL FORGE_URL N
const [model, forge, n] = [process.argv[2], process.argv[3], Number(process.argv[4] ?? 50)];
async function first(url, body) {
	const t0 = performance.now();
	const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
	const dec = new TextDecoder();
	let buf = "", at = null;
	for await (const part of res.body) {
		buf += dec.decode(part, { stream: true });
		let i;
		while ((i = buf.indexOf("\n\n")) >= 0) {
			const ev = buf.slice(0, i);
			buf = buf.slice(i + 2);
			if (at === null && ev.startsWith("data: {")) {
				const c = JSON.parse(ev.slice(6)).choices?.[0]?.delta?.content;
				if (c)
					at = performance.now() - t0;
			}
		}
	}
	return at;
}
const q = (a, p) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
const d = [], f = [];
const msgs = [{ role: "user", content: "what is 2+2?" }];
for (let i = 0; i < n; i++) {
	d.push(await first(model + "/v1/chat/completions", { model: "slow", stream: true, messages: msgs }));
	f.push(await first(forge + "/v1/chat/completions", { model: "forge/react@slow", stream: true, messages: msgs }));
}
console.log([q(d, 0.5), q(d, 0.99), q(f, 0.5), q(f, 0.99)].map((x) => x.toFixed(2)).join(" "));
