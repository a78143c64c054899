// Vitest global setup: starts one real `mpmeter serve` for the whole run,
// seeded with seed.yaml, on a free port (port 0: the server picks one and
// prints it), and provides its endpoint to the tests (inject("mpmeterEndpoint")).
// The binary is $MPMETER_BIN or `mpmeter` on PATH
// (go install github.com/mpmeter/mpmeter/cmd/mpmeter@latest).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const seed = join(import.meta.dirname, "seed.yaml");

export default async function setup(project) {
  const dir = mkdtempSync(join(tmpdir(), "mpmeter-vitest-"));
  const proc = spawn(
    process.env.MPMETER_BIN || "mpmeter",
    ["serve", "--seed", seed, "--db", join(dir, "mpmeter.db"), "--listen", "127.0.0.1:0", "--log-level", "warn"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  // The first line says "mpmeter: serving ... at http://127.0.0.1:PORT".
  const endpoint = await new Promise((resolve, reject) => {
    proc.once("error", reject);
    exited.then((code) => reject(new Error(`mpmeter exited with ${code} before serving`)));
    const lines = createInterface({ input: proc.stdout });
    lines.once("line", (line) => {
      const m = line.match(/(http:\/\/\S+)/);
      m ? resolve(m[1]) : reject(new Error(`unexpected first line from mpmeter: ${line}`));
    });
  });
  proc.stdout.resume(); // keep draining what it prints
  const health = await fetch(`${endpoint}/healthz`);
  if (!health.ok) throw new Error(`${endpoint}/healthz answered ${health.status}`);
  project.provide("mpmeterEndpoint", endpoint);

  return async () => {
    proc.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
}
