// The README's requests, made through a client generated from the composed OpenAPI document
// (tests/e2e/test_openapi_client.py generates ./api.d.ts from the running gateway's /openapi.json
// with openapi-typescript, then type-checks this file with `tsc --noEmit --strict`). A request
// the document types wrongly (a defaulted field marked required, a missing parameter, a wrong
// answer shape) fails the test.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Problem = components["schemas"]["Problem"];

export async function readme(baseUrl: string, email: string, password: string, channelKey: string): Promise<void> {
  const client = createClient<paths>({ baseUrl });

  // POST /v1/auth/login {"email", "password"}: the access token goes into Authorization
  const login = await client.POST("/v1/auth/login", { body: { email, password } });
  if (login.error) {
    const problem: Problem = login.error;
    throw new Error(`${problem.status} ${problem.title}`);
  }
  const token: string = login.data.access_token;
  const refresh: string = login.data.refresh_token;
  const expiresIn: number = login.data.expires_in;
  const user = { headers: { Authorization: `Bearer ${token}` } };

  // POST /v1/tickets with a channel key: {"subject", "requester"} and nothing else (description,
  // priority, tags... have defaults), with an Idempotency-Key
  const created = await client.POST("/v1/tickets", {
    params: { header: { "Idempotency-Key": "wecom-msg-1" } },
    body: { subject: "无法登录 / cannot log in", requester: { name: "张三", email: "zhang@example.com" } },
    headers: { Authorization: `Bearer ${channelKey}` },
  });
  if (created.error) throw new Error(created.error.detail ?? created.error.title);
  const ticket = created.data;
  const id: string = ticket.id;
  const version: number = ticket.version;
  const priority: "low" | "normal" | "high" | "urgent" = ticket.priority;

  // GET /v1/tickets?limit=5
  const page = await client.GET("/v1/tickets", { params: { query: { limit: 5 } }, ...user });
  if (page.data) {
    const subjects: string[] = page.data.items.map((t) => t.subject);
    const next: string | null = page.data.next_cursor;
    console.log(subjects, next);
  }

  // GET /v1/users/me
  const me = await client.GET("/v1/users/me", user);
  if (me.data) console.log(me.data.email, me.data.role);

  // PATCH /v1/tickets/{id}: status and priority, If-Match with the version read
  const patched = await client.PATCH("/v1/tickets/{ticket_id}", {
    params: { path: { ticket_id: id }, header: { "If-Match": `W/"${version}"` } },
    body: { status: "open", priority: "high" },
    ...user,
  });
  if (patched.response.status === 412 && patched.error) {
    const conflict: Problem = patched.error;
    console.log(conflict.type, conflict["current_version"]);
  }

  // POST /v1/tickets/{id}/messages: a public reply (only "body" is required)
  const reply = await client.POST("/v1/tickets/{ticket_id}/messages", {
    params: { path: { ticket_id: id } },
    body: { body: "我们正在处理 / we are on it" },
    ...user,
  });
  if (reply.data) console.log(reply.data.id, priority, expiresIn);

  // POST /v1/auth/refresh {"refresh_token"}, POST /v1/auth/logout
  await client.POST("/v1/auth/refresh", { body: { refresh_token: refresh } });
  await client.POST("/v1/auth/logout", { body: { all_sessions: false }, ...user });
}
