/* What a Next.js frontend does with the API: types generated from the live /openapi.json by
 * openapi-typescript (api.ts, next to this file when it runs), calls made with openapi-fetch,
 * compiled with `tsc --strict`. The annotations below are the shapes a frontend relies on: when the
 * document types a field differently (a number as a string, a nullable field as required text, an
 * error body without `detail`), this file stops compiling. Then every call runs against the real api
 * and the values are checked too. Run by client-check (API_URL, USER_ID, TOKEN, OTHER_TOKEN). */
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

// The shapes a frontend codes against. Each is checked against the generated types both ways.
interface Task {
  id: number;
  user_id: string;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: string;
  updated_at: string;
}
interface HTTPException {
  detail: string;
}
interface ValidationErrorBody {
  detail: { loc: (string | number)[]; msg: string; type: string }[];
}
type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(ok: Same<A, B>): Same<A, B> => ok;

type TaskPath = paths["/api/{user_id}/tasks/{id}"];
type ListPath = paths["/api/{user_id}/tasks"];
same<Json<TaskPath["get"]["responses"][200]>, Task>(true);
same<Json<ListPath["get"]["responses"][200]>, Task[]>(true);
same<Json<ListPath["post"]["responses"][201]>, Task>(true);
same<Json<TaskPath["put"]["responses"][200]>, Task>(true);
same<Json<paths["/api/{user_id}/tasks/{id}/complete"]["patch"]["responses"][200]>, Task>(true);
const e401: HTTPException = {} as Json<ListPath["get"]["responses"][401]>;
const e403: HTTPException = {} as Json<TaskPath["get"]["responses"][403]>;
const e404: HTTPException = {} as Json<TaskPath["get"]["responses"][404]>;
const e422: ValidationErrorBody = {} as Json<ListPath["get"]["responses"][422]>;
// POST's 422 is either shape: validation (a list) or an Idempotency-Key reused with another body (text)
const e422post: ValidationErrorBody | HTTPException = {} as Json<ListPath["post"]["responses"][422]>;
void [e401, e403, e404, e422, e422post];

let failures = 0;
function check(cond: boolean, what: string): void {
  if (!cond) {
    failures++;
    console.error(`client: FAILED ${what}`);
  }
}
function isTask(t: Task): boolean {
  return (
    Number.isInteger(t.id) && typeof t.user_id === "string" && typeof t.title === "string" &&
    (t.description === null || typeof t.description === "string") &&
    typeof t.completed === "boolean" && !Number.isNaN(Date.parse(t.created_at)) &&
    !Number.isNaN(Date.parse(t.updated_at))
  );
}
const isDetail = (e: unknown): boolean =>
  typeof e === "object" && e !== null && typeof (e as HTTPException).detail === "string";

async function main(): Promise<void> {
  const baseUrl = env("API_URL"), user_id = env("USER_ID");
  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("TOKEN")}` } });
  const path = { user_id };

  // create three
  const created: Task[] = [];
  for (const [title, completed] of [["typed client", false], ["second", true], ["third", false]] as const) {
    const { data, response } = await api.POST("/api/{user_id}/tasks", {
      params: { path },
      body: { title, description: title === "second" ? null : `about ${title}`, completed },
    });
    check(response.status === 201 && data !== undefined && isTask(data), `create ${title}: ${response.status}`);
    check(response.headers.get("location") === `/api/${user_id}/tasks/${data?.id}`, "Location of the created task");
    if (data) created.push(data);
  }
  const first = created[0];
  if (!first) throw new Error("nothing created");

  // list with filters and paging
  const page = await api.GET("/api/{user_id}/tasks", {
    params: { path, query: { status: "pending", sort: "title", order: "asc", limit: 1, offset: 1 } },
  });
  check(page.response.status === 200, `list: ${page.response.status}`);
  check(page.response.headers.get("x-total-count") === "2", `X-Total-Count of pending: ${page.response.headers.get("x-total-count")}`);
  check(page.data?.length === 1 && page.data[0]?.title === "typed client", `second page of 1 sorted by title: ${JSON.stringify(page.data)}`);
  const found = await api.GET("/api/{user_id}/tasks", { params: { path, query: { search: "SECOND", status: "completed" } } });
  check(found.data?.length === 1 && found.data[0]?.description === null, `search + status filter: ${JSON.stringify(found.data)}`);

  // get, update, toggle
  const id = first.id;
  const got = await api.GET("/api/{user_id}/tasks/{id}", { params: { path: { user_id, id } } });
  check(got.data !== undefined && isTask(got.data) && got.data.title === "typed client", `get: ${got.response.status}`);
  const upd = await api.PUT("/api/{user_id}/tasks/{id}", {
    params: { path: { user_id, id } },
    body: { title: "typed client, edited", description: null, completed: false },
  });
  check(upd.data?.title === "typed client, edited" && upd.data.description === null, `update: ${upd.response.status}`);
  const tog = await api.PATCH("/api/{user_id}/tasks/{id}/complete", { params: { path: { user_id, id } } });
  check(tog.data?.completed === true, `toggle: ${tog.response.status} ${JSON.stringify(tog.data)}`);

  // error shapes: 401, 403, 404, 422
  const anon = createClient<paths>({ baseUrl });
  const r401 = await anon.GET("/api/{user_id}/tasks", { params: { path } });
  check(r401.response.status === 401 && isDetail(r401.error), `401: ${JSON.stringify(r401.error)}`);
  check(r401.response.headers.get("www-authenticate")?.startsWith("Bearer") === true, "401 has WWW-Authenticate: Bearer");
  const other = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${env("OTHER_TOKEN")}` } });
  const r403 = await other.GET("/api/{user_id}/tasks/{id}", { params: { path: { user_id, id } } });
  check(r403.response.status === 403 && isDetail(r403.error), `403: ${JSON.stringify(r403.error)}`);
  const r404 = await api.GET("/api/{user_id}/tasks/{id}", { params: { path: { user_id, id: 2147483000 } } });
  check(r404.response.status === 404 && isDetail(r404.error), `404: ${JSON.stringify(r404.error)}`);
  const r422 = await api.POST("/api/{user_id}/tasks", { params: { path }, body: { title: "" } });
  const v = r422.error as ValidationErrorBody | undefined;
  check(
    r422.response.status === 422 && Array.isArray(v?.detail) &&
      v.detail.some((d) => d.type === "string_too_short" && d.loc.join(".") === "body.title" && typeof d.msg === "string"),
    `422: ${JSON.stringify(r422.error)}`,
  );
  const q422 = await api.GET("/api/{user_id}/tasks", { params: { path, query: { limit: 1000 } } });
  check(q422.response.status === 422 && Array.isArray((q422.error as ValidationErrorBody | undefined)?.detail), `422 on a query: ${JSON.stringify(q422.error)}`);

  // delete, then it is gone
  for (const t of created) {
    const del = await api.DELETE("/api/{user_id}/tasks/{id}", { params: { path: { user_id, id: t.id } } });
    check(del.response.status === 204, `delete ${t.id}: ${del.response.status}`);
  }
  const gone = await api.GET("/api/{user_id}/tasks/{id}", { params: { path: { user_id, id } } });
  check(gone.response.status === 404, `deleted task is gone: ${gone.response.status}`);
  const empty = await api.GET("/api/{user_id}/tasks", { params: { path } });
  check(empty.data?.length === 0, `no tasks left: ${JSON.stringify(empty.data)}`);

  if (failures) {
    process.exitCode = 1;
  } else {
    console.log("client: the generated client created, listed, read, updated, toggled and deleted tasks; 401/403/404/422 have their documented shapes");
  }
}

main().catch((e: unknown) => {
  console.error(`client: ${e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
});
