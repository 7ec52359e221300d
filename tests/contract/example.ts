// A small client written against the types generated from openapi.json. It does not
// run in CI; it must type-check, so a document that stops generating usable types
// (a renamed field, a lost `nullable`, an untyped error body) fails the build.
import type { components, paths } from "./generated/api";

type Schemas = components["schemas"];
type RegisterBody =
  paths["/api/v1/auth/register"]["post"]["requestBody"]["content"]["application/json"];
type TokenPair =
  paths["/api/v1/auth/login"]["post"]["responses"]["200"]["content"]["application/json; charset=utf-8"];
type SearchQuery = NonNullable<paths["/api/v1/services"]["get"]["parameters"]["query"]>;
type Problem = Schemas["Problem"];

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }

  /** The message to show beside a form field, if the server named it. */
  fieldMessage(field: string): string | undefined {
    return this.problem.errors?.find((error) => error.field === field)?.message;
  }
}

async function call<T>(base: string, path: string, init: RequestInit): Promise<T> {
  const response = await fetch(base + path, init);
  if (!response.ok) {
    throw new ApiError((await response.json()) as Problem);
  }
  return (await response.json()) as T;
}

export async function signUpAndLogIn(base: string, body: RegisterBody): Promise<TokenPair> {
  const json = { "content-type": "application/json" };
  await call<Schemas["User"]>(base, "/api/v1/auth/register", {
    method: "POST",
    headers: json,
    body: JSON.stringify(body),
  });
  return call<TokenPair>(base, "/api/v1/auth/login", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ email: body.email, password: body.password }),
  });
}

/** Every listing matching `query`, following `next_cursor` (null on the last page). */
export async function searchAll(base: string, query: SearchQuery): Promise<Schemas["Service"][]> {
  const all: Schemas["Service"][] = [];
  let cursor: string | null | undefined = undefined;
  do {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries({ ...query, cursor })) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    const page: { items: Schemas["Service"][]; next_cursor?: string | null } = await call(
      base,
      `/api/v1/services?${params}`,
      { method: "GET" },
    );
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

export function describePrice(service: Schemas["Service"]): string {
  const rating = service.rating_avg === null || service.rating_avg === undefined
    ? "unrated"
    : service.rating_avg.toFixed(1);
  return `${service.title}: ${service.price_cents / 100} (${service.pricing_unit}), ${rating}`;
}

type ClientFrame = Schemas["ClientFrame"];
type ServerFrame = Schemas["ServerFrame"];

/** Opens the real-time channel with a ticket and sends a message, typed both ways. */
export async function chat(
  base: string,
  token: string,
  threadId: string,
  onFrame: (frame: ServerFrame) => void,
): Promise<WebSocket> {
  const { ticket } = await call<Schemas["WsTicket"]>(base, "/api/v1/ws/ticket", {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  const socket = new WebSocket(`${base.replace(/^http/, "ws")}/api/v1/ws?ticket=${ticket}`);
  socket.onmessage = (event) => {
    const frame = JSON.parse(String(event.data)) as ServerFrame;
    if (frame.type === "error" && frame.code === "validation_failed") {
      console.warn(frame.errors?.map((error) => `${error.field}: ${error.message}`));
    }
    onFrame(frame);
  };
  const send: ClientFrame = { type: "send", thread_id: threadId, body: "hello", client_msg_id: null };
  socket.onopen = () => socket.send(JSON.stringify(send));
  return socket;
}
