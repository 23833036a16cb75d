import "@xyflow/react/dist/style.css";
import "./styles.css";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { api, ApiError } from "./api";
import { App } from "./App";
import { Catalog } from "./catalog";
import { openInitial, prefetchInitial } from "./session";
import { useEditor } from "./store";

const root = createRoot(document.getElementById("root")!);

if ((window as unknown as { __torchloomTestHooks?: boolean }).__torchloomTestHooks) {
  void import("./testHooks").then((hooks) => hooks.installTestHooks());
}

function Message({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <div className="splash" role="alert" data-testid="splash">
      <h1>{title}</h1>
      {children}
    </div>
  );
}

async function start() {
  root.render(<Message title="torchloom">Loading…</Message>);
  const project = prefetchInitial();
  try {
    const catalog = await api.catalog();
    useEditor.getState().setCatalog(new Catalog(catalog));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      root.render(
        <Message title="Sign in with the start URL">
          <p>
            This torchloom server needs its access token. Open the URL that <code>npm start</code> (or <code>torchloom serve</code>) printed — it
            looks like <code>http://127.0.0.1:5000/?token=…</code>. The token is then kept in a cookie for this browser.
          </p>
        </Message>,
      );
    } else {
      root.render(
        <Message title="The server cannot be reached">
          <p>{e instanceof Error ? e.message : String(e)}</p>
        </Message>,
      );
    }
    return;
  }
  root.render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
  try {
    await openInitial(project);
  } catch (e) {
    console.error(e);
  }
}

void start();
