// forge's /v1/chat/completions as users drive it: the official openai
// client and LangChain's ChatOpenAI.  FORGE_API is the gateway's base URL.
// Prints one line of figures; exits 1 naming the first check that failed.
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, AIMessage, SystemMessage, ToolMessage } from "@langchain/core/messages";
import { z } from "zod";

const api = process.env.FORGE_API;
const client = new OpenAI({ baseURL: api + "/v1", apiKey: "unused", maxRetries: 2 });
function check(ok, what, got) {
	if (!ok) {
		console.error("FAIL: " + what + (got === undefined ? "" : ": " + JSON.stringify(got)));
		process.exit(1);
	}
}
async function sessions() {
	const r = await fetch(api + "/v1/sessions?limit=1000");
	return (await r.json()).data.length;
}

// 1. the whole history and the parameters reach the model (mock-llm echoes)
let r = await client.chat.completions.create({
	model: "forge/react", temperature: 0.3, max_tokens: 40, seed: 1,
	messages: [{ role: "system", content: "be brief" }, { role: "user", content: "My name is Ada" },
		   { role: "assistant", content: "Hello Ada" }, { role: "user", content: "echo" }] });
const echo = JSON.parse(r.choices[0].message.content);
check(JSON.stringify(echo.roles) === '["system","user","assistant","user"]', "openai: history", echo);
check(echo.temperature === 0.3 && echo.max_tokens === 40 && echo.seed === 1, "openai: parameters", echo);

// 2. an agent run: the answer and its usage
r = await client.chat.completions.create({ model: "forge/react", messages: [{ role: "user", content: "what is 2+2?" }] });
check(r.choices[0].message.content === "The answer is 4." && r.choices[0].finish_reason === "stop", "openai: answer", r);
check(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, "openai: usage", r.usage);

// 3. the client's own tool: tool_calls back, its result continues
const tools = [{ type: "function", function: { name: "get_weather", description: "The weather in a city",
	parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const ask = [{ role: "user", content: "weather in Paris?" }];
r = await client.chat.completions.create({ model: "forge/react", messages: ask, tools });
check(r.choices[0].finish_reason === "tool_calls", "openai: tool_calls finish", r.choices[0]);
const call = r.choices[0].message.tool_calls[0];
check(call.function.name === "get_weather" && JSON.parse(call.function.arguments).city === "Paris", "openai: the call", call);
r = await client.chat.completions.create({ model: "forge/react", tools,
	messages: [...ask, r.choices[0].message, { role: "tool", tool_call_id: call.id, content: "sunny, 21C" }] });
check(r.choices[0].message.content === "The answer is 4.", "openai: after the tool result", r.choices[0]);
// a run that used forge's calculator before it asked for get_weather: the
// result continues that session (the same id), the calculator ran once
async function toolRuns(id) {
	const s = await (await fetch(api + "/v1/sessions/" + id)).json();
	return s.messages.filter((x) => x.role === "tool").length;
}
const mixed = [{ role: "user", content: "mixed: math, then weather" }];
const m1 = await client.chat.completions.create({ model: "forge/react", messages: mixed, tools });
const mc = m1.choices[0].message.tool_calls?.[0];
check(mc?.function.name === "get_weather", "openai: mixed: the client's call", m1.choices[0]);
const m2 = await client.chat.completions.create({ model: "forge/react", tools,
	messages: [...mixed, m1.choices[0].message, { role: "tool", tool_call_id: mc.id, content: "sunny" }] });
check(m2.id === m1.id && m2.choices[0].message.content === "The answer is 4." && await toolRuns(m1.id) === 2,
	"openai: mixed: the result continued " + m1.id, [m2.id, m2.choices[0].message]);

// 4. streaming: text deltas, and the time to the first chunk with content
let t0 = performance.now(), first = null, text = "";
const stream = await client.chat.completions.create({ model: "forge/react", stream: true,
	messages: [{ role: "user", content: "what is 2+2?" }] });
for await (const ch of stream) {
	const d = ch.choices[0]?.delta?.content ?? "";
	if (d && first === null)
		first = performance.now() - t0;
	text += d;
}
const total = performance.now() - t0;
check(text === "The answer is 4.", "openai: streamed text", text);

// 4b. token streaming end to end: a model that sends "The answer" at once
// and the rest 400 ms later; the first content must come long before
if (process.env.SLOW_GAP_MS) {
	const gap = Number(process.env.SLOW_GAP_MS);
	let t1 = performance.now(), f1 = null, txt = "";
	const st = await client.chat.completions.create({ model: "forge/react@slow", stream: true,
		messages: [{ role: "user", content: "what is 2+2?" }] });
	for await (const ch of st) {
		const d = ch.choices[0]?.delta?.content ?? "";
		if (d && f1 === null)
			f1 = performance.now() - t1;
		txt += d;
	}
	const tot = performance.now() - t1;
	check(txt === "The answer is 4.", "openai: live text then the rest", txt);
	check(f1 < gap / 2 && tot >= gap, `openai: first content at ${f1.toFixed(1)} ms of ${tot.toFixed(1)} ms (the model's gap ${gap} ms)`);
	globalThis.slowFirst = f1;
	globalThis.slowTotal = tot;
}

// 5. a failed run is not retried by the client (no duplicate session)
const before = await sessions();
let status = 0;
try {
	await client.chat.completions.create({ model: "forge/react@down", messages: [{ role: "user", content: "what is 2+2?" }] });
} catch (e) {
	status = e.status;
}
const after = await sessions();
check(status === 502 && after === before + 1, "openai: a failed run made " + (after - before) + " sessions (status " + status + ")");
// a retry with the same Idempotency-Key is the same session
const o = { headers: { "Idempotency-Key": "clients-1" } };
const a1 = await client.chat.completions.create({ model: "forge/react", messages: [{ role: "user", content: "what is 2+2?" }] }, o);
const a2 = await client.chat.completions.create({ model: "forge/react", messages: [{ role: "user", content: "what is 2+2?" }] }, o);
check(a1.id === a2.id, "openai: Idempotency-Key", [a1.id, a2.id]);

// 6. LangChain: history, bindTools, withStructuredOutput, streaming
const llm = new ChatOpenAI({ model: "forge/react", apiKey: "unused", configuration: { baseURL: api + "/v1" }, maxRetries: 1 });
let m = await llm.invoke([new SystemMessage("be brief"), new HumanMessage("My name is Ada"), new AIMessage("Hello Ada"), new HumanMessage("echo")]);
check(JSON.stringify(JSON.parse(m.content).roles) === '["system","user","assistant","user"]', "langchain: history", m.content);
m = await llm.bindTools(tools).invoke("weather in Paris?");
check(m.tool_calls.length === 1 && m.tool_calls[0].name === "get_weather" && m.tool_calls[0].args.city === "Paris", "langchain: bindTools", m.tool_calls);
// LangChain's own tool loop over a run that used forge's calculator first
const bound = llm.bindTools(tools);
const lq = [new HumanMessage("mixed: math, then weather")];
const l1 = await bound.invoke(lq);
check(l1.tool_calls.length === 1 && l1.tool_calls[0].name === "get_weather", "langchain: mixed: the call", l1.tool_calls);
const l2 = await bound.invoke([...lq, l1, new ToolMessage({ content: "sunny", tool_call_id: l1.tool_calls[0].id })]);
check(l2.content === "The answer is 4." && l2.id === l1.id && await toolRuns(l1.id) === 2,
	"langchain: mixed: the result continued " + l1.id, [l1.id, l2.id, l2.content]);
const City = z.object({ city: z.string() });
const so = await llm.withStructuredOutput(City, { name: "extract_city", method: "functionCalling" }).invoke("Where is the Louvre?");
check(so.city === "Paris", "langchain: withStructuredOutput", so);
let lt = "";
for await (const ch of await llm.stream("what is 2+2?"))
	lt += ch.content;
check(lt === "The answer is 4.", "langchain: stream", lt);

console.log(`clients: openai ${OpenAI.VERSION ?? "?"} and @langchain/openai: history, parameters, client tools, ` +
	`streaming (mock: first content at ${first.toFixed(1)} ms of ${total.toFixed(1)} ms` +
	(globalThis.slowFirst !== undefined ? `; a model streaming over ${process.env.SLOW_GAP_MS} ms: first token through forge at ` +
	 `${globalThis.slowFirst.toFixed(1)} ms of ${globalThis.slowTotal.toFixed(1)} ms` : "") +
	`), client tool results continuing the run that asked (openai and a LangChain tool loop), no retry of a failed run, Idempotency-Key, bindTools, withStructuredOutput`);
