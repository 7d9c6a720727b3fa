// fake-server.js — a stdio MCP server for tests/integration/mcp.sh that
// misbehaves on request.  JSON-RPC 2.0, one message a line.  Its tools:
//   echo {text}      "echo: TEXT" (after a notification and a request of
//                    its own to forge, which forge must answer or ignore)
//   hang             never answers (but answers pings meanwhile)
//   freeze           never answers, nor anything else: its event loop stops
//   waitfile {file}  answers "waited" once file exists (looks every 20 ms)
//   crash            exits with status 3 mid-call
//   garbage          prints a line that is not JSON
//   flood            writes notifications without end, never answers
//   qflood           sends requests to forge without end, never answers
//   big {n}          a text of n 'y'
//   counter {file}   appends a line to file, answers "counted"
//   image            an image item and a text item
//   fail             a result with isError
//   rpcerror         a JSON-RPC error
//   page2            listed on the second page of tools/list (page3 instead
//                    once relist was called)
//   relist           says notifications/tools/list_changed
//   nul              a text with a NUL in it ("before\u0000after")
//   lone             a text cut inside a surrogate pair ("😀ab\ud83d": JSON
//                    has it as a lone \ud83d escape)
//   fat              an inputSchema over 64 KiB (forge leaves it out)
//   bad.name         a name models cannot take (forge leaves it out)
"use strict";
const fs = require("fs");

const tools1 = ["echo", "hang", "freeze", "waitfile", "crash", "garbage", "flood", "qflood", "big", "counter", "image", "fail",
	"rpcerror", "relist", "nul", "lone", "fat", "bad.name"].map((name) => ({
	name, description: "fake " + name,
	inputSchema: name === "fat" ? { type: "object", description: "z".repeat(70000) }
		: { type: "object", properties: { text: { type: "string" } } },
}));
let relisted = false;
const tools2 = () => [{ name: relisted ? "page3" : "page2", description: "on page 2",
	inputSchema: { type: "object" } }];

const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
const reply = (id, result) => send({ jsonrpc: "2.0", id, result });
const text = (t) => ({ content: [{ type: "text", text: t }] });

function call(id, name, args) {
	switch (name) {
	case "echo":
		send({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "hi" } });
		send({ jsonrpc: "2.0", id: "srv-1", method: "roots/list" });
		return reply(id, text("echo: " + args.text));
	case "page2": return reply(id, text("page 2"));
	case "page3": return reply(id, text("page 3"));
	case "relist":
		relisted = true;
		send({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
		return reply(id, text("relisted"));
	case "hang": return;
	case "freeze": return Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
	case "waitfile": {
		const look = () => fs.existsSync(args.file) ? reply(id, text("waited")) : setTimeout(look, 20);
		return look();
	}
	case "crash": return process.exit(3);
	case "garbage": return process.stdout.write("this is not json\n");
	case "flood": {
		const note = (JSON.stringify({ jsonrpc: "2.0", method: "notifications/message",
			params: { level: "info", data: "x".repeat(200) } }) + "\n").repeat(300);
		const more = () => process.stdout.write(note) ? setImmediate(more) : process.stdout.once("drain", more);
		return more();
	}
	case "qflood": {
		let n = 0;
		const more = () => {
			let batch = "";
			for (let k = 0; k < 300; k++)
				batch += JSON.stringify({ jsonrpc: "2.0", id: "q" + n++, method: "roots/list" }) + "\n";
			return process.stdout.write(batch) ? setImmediate(more) : process.stdout.once("drain", more);
		};
		return more();
	}
	case "big": return reply(id, text("y".repeat(args.n)));
	case "counter":
		fs.appendFileSync(args.file, "ran\n");
		return reply(id, text("counted"));
	case "image":
		return reply(id, { content: [{ type: "image", data: "AAEC", mimeType: "image/png" },
			{ type: "text", text: "caption" }] });
	case "fail": return reply(id, { content: [{ type: "text", text: "it failed" }], isError: true });
	case "nul": return reply(id, text("before\u0000after"));
	case "lone": return reply(id, text("😀ab😀".slice(0, 5)));
	case "rpcerror": return send({ jsonrpc: "2.0", id, error: { code: -32000, message: "nope" } });
	default: return send({ jsonrpc: "2.0", id, error: { code: -32602, message: "no tool " + name } });
	}
}

let buf = "";
process.stdin.on("data", (d) => {
	buf += d;
	let nl;
	while ((nl = buf.indexOf("\n")) >= 0) {
		const line = buf.slice(0, nl);
		buf = buf.slice(nl + 1);
		if (!line.trim()) continue;
		const m = JSON.parse(line);
		if (m.method === "initialize")
			reply(m.id, { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
				serverInfo: { name: "fake", version: "1" } });
		else if (m.method === "tools/list")
			reply(m.id, m.params && m.params.cursor === "p2" ? { tools: tools2() }
				: { tools: tools1, nextCursor: "p2" });
		else if (m.method === "ping")
			reply(m.id, {});
		else if (m.method === "tools/call")
			call(m.id, m.params.name, m.params.arguments || {});
		else if (m.id !== undefined && m.method)
			send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "no method" } });
		// (answers to our own requests and notifications: ignored)
	}
});
// (FAKE_STAY=1: lives on when its stdin ends, like a server with timers)
process.stdin.on("end", () => process.env.FAKE_STAY ? setInterval(() => {}, 1000) : process.exit(0));
