// Failures that used to end in `.catch(() => undefined)` now tell the user why (issue 11).
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadDatasetLists } from "../components/DatasetPanel";
import { openProjectFromAddress, useSession } from "../session";

afterEach(() => {
  vi.unstubAllGlobals();
  useSession.setState({ toast: null });
});

function notFound(message: string): Response {
  return new Response(JSON.stringify({ error: { code: "not_found", message } }), { status: 404 });
}

describe("failures are shown, not dropped", () => {
  it("a project id in the address bar that does not exist says so", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => notFound("project abc123 does not exist")));
    await openProjectFromAddress("abc123");
    expect(useSession.getState().toast).toBe("Cannot open project abc123: project abc123 does not exist");
  });

  it("a dataset list that cannot be fetched says why", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        throw new TypeError("Failed to fetch");
      }),
    );
    expect(await loadDatasetLists()).toBeNull();
    expect(useSession.getState().toast).toBe("Cannot list the datasets: Failed to fetch");
  });

  it("a dataset list that arrives is returned", async () => {
    const lists = { builtin: [], uploaded: [] };
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify(lists), { status: 200 })));
    expect(await loadDatasetLists()).toEqual(lists);
    expect(useSession.getState().toast).toBeNull();
  });
});
