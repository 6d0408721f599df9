// The archc extension: starts `archc lsp` (stdio) for the YAML files that match archc.filePatterns.
// The JSON Schema for yaml-language-server (redhat.vscode-yaml) is contributed statically in package.json.
import * as vscode from "vscode";
import { DocumentSelector, LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";

let client: LanguageClient | undefined;

interface Settings {
  command: string;
  args: string[];
  patterns: string[];
}

function settings(): Settings {
  const cfg = vscode.workspace.getConfiguration("archc");
  return {
    command: expandWorkspace(cfg.get<string>("serverCommand", "archc")),
    args: cfg.get<string[]>("serverArgs", ["lsp"]),
    patterns: cfg.get<string[]>("filePatterns", ["**/specs/**/*.yaml", "**/*.archc.yaml"]),
  };
}

/** `${workspaceFolder}` in the command path (VS Code does not expand it in extension settings). */
function expandWorkspace(command: string): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? "";
  return command.split("${workspaceFolder}").join(folder);
}

function selector(patterns: string[]): DocumentSelector {
  return patterns.map((pattern) => ({ scheme: "file", language: "yaml", pattern }));
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const s = settings();
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const server: ServerOptions = { command: s.command, args: s.args, options: cwd ? { cwd } : {} };
  const options: LanguageClientOptions = { documentSelector: selector(s.patterns) };
  client = new LanguageClient("archc", "archc", server, options);
  try {
    await client.start();
  } catch (err) {
    const hint = "Install it with `pip install 'archc[lsp]'` or set archc.serverCommand.";
    void vscode.window.showErrorMessage(`archc: could not start \`${s.command} ${s.args.join(" ")}\`: ${err}. ${hint}`);
  }
  context.subscriptions.push({ dispose: () => void stop() });
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}

async function restart(context: vscode.ExtensionContext): Promise<void> {
  await stop();
  await start(context);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.commands.registerCommand("archc.restartServer", () => restart(context)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      const keys = ["archc.serverCommand", "archc.serverArgs", "archc.filePatterns"];
      if (keys.some((key) => e.affectsConfiguration(key))) {
        void restart(context);
      }
    }),
  );
  await start(context);
}

/** The running client (scripts/smoke.js reads its state and the server's capabilities). */
export function languageClient(): LanguageClient | undefined {
  return client;
}

export function deactivate(): Promise<void> {
  return stop();
}
