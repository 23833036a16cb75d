// "Download full log": the stored events (steps left out) turned into the log text, saved as
// <run id>.log; the console itself keeps only the last lines.
import { toast } from "../session";
import { fetchLogEvents, logText } from "./fullLog";
import { runsApi } from "./runsApi";

export async function downloadFullLog(runId: string): Promise<void> {
  try {
    const events = await fetchLogEvents((after) => runsApi.logEvents(runId, after));
    const blob = new Blob([logText(runId, events)], { type: "text/plain" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `${runId.replace(/[^\w.-]+/g, "_")}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (e) {
    toast(`The full log cannot be downloaded: ${e instanceof Error ? e.message : String(e)}`);
  }
}
