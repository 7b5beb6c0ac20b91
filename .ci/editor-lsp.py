#!/usr/bin/env python3
"""Drives yaml-language-server (the server behind VS Code's YAML extension)
over LSP stdio the way an editor does, against smo's schemas, and checks
that it validates and completes descriptors as the README says."""
import json, re, os, subprocess, sys, pathlib, shutil, tempfile, time, select

server = sys.argv[1]
repo = pathlib.Path(sys.argv[2]).resolve()

work = pathlib.Path(tempfile.mkdtemp(prefix="yls-"))
shutil.copytree(repo / "state-example", work / "state")
shutil.copytree(repo / "schemas", work / "schemas")
proj = work / "state" / "projects" / "athens"
good = (proj / "smart-building-graph.yaml").read_text()

p = subprocess.Popen(["node", server, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def cleanup():
    if p.poll() is None:
        p.kill()
    shutil.rmtree(work, ignore_errors=True)
import atexit
atexit.register(cleanup)
buf = b""
def send(msg):
    body = json.dumps(msg).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    p.stdin.flush()

def read(timeout):
    global buf
    end = time.time() + timeout
    while True:
        if b"\r\n\r\n" in buf:
            head, rest = buf.split(b"\r\n\r\n", 1)
            n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            if len(rest) >= n:
                buf = rest[n:]
                return json.loads(rest[:n])
        left = end - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([p.stdout], [], [], left)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                return None
            buf += chunk

settings = {"yaml": {"validate": True, "completion": True, "hover": True, "schemas": {}}}
diags = {}
responses = {}
def pump(timeout, until=None):
    end = time.time() + timeout
    while time.time() < end:
        m = read(end - time.time())
        if m is None:
            return
        if m.get("method") == "textDocument/publishDiagnostics":
            diags[m["params"]["uri"]] = m["params"]["diagnostics"]
        elif "id" in m and "method" in m:  # a request from the server
            if m["method"] == "workspace/configuration":
                send({"jsonrpc": "2.0", "id": m["id"], "result": [settings["yaml"] if i.get("section") == "yaml" else None for i in m["params"]["items"]]})
            else:
                send({"jsonrpc": "2.0", "id": m["id"], "result": None})
        elif "id" in m:
            responses[m["id"]] = m
        if until and until():
            return

send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": os.getpid(), "rootUri": (work / "state").as_uri(), "capabilities": {"workspace": {"configuration": True}, "textDocument": {"publishDiagnostics": {}, "completion": {"completionItem": {"snippetSupport": False}}}}}})
pump(20, lambda: 1 in responses)
if 1 not in responses:
    sys.exit("check-editor: yaml-language-server did not answer initialize")
send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

def configure(schemas):
    settings["yaml"]["schemas"] = schemas
    send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": settings}})
    pump(2)

version = [0]
def open_doc(path, text):
    path.write_text(text)
    uri = path.as_uri()
    diags.pop(uri, None)
    version[0] += 1
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": version[0], "text": text}}})
    pump(20, lambda: uri in diags)
    return diags.get(uri)

failures = []
def check(name, cond, detail):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + json.dumps(detail)[:2000]))
    if not cond:
        failures.append(name)

configure({})
rel = "# yaml-language-server: $schema=../../../schemas/hdag.schema.json\n"
d = open_doc(proj / "good.yaml", rel + good)
check("modeline (relative path): the example has no diagnostics", d == [], d)

# Unknown fields are allowed (as in the original SMO); a missing required
# field and a value outside an enum are errors.
bad = good.replace("  id: smart-building-graph\n", "", 1).replace("cpu: light", "cpu: 7", 1)
d = open_doc(proj / "bad.yaml", rel + bad) or []
lines = (rel + bad).splitlines()
graph_line = next(i for i, l in enumerate(lines) if l.startswith("hdaGraph:"))
cpu_line = next(i for i, l in enumerate(lines) if "cpu: 7" in l)
check("modeline: a missing required field is reported on its parent's line",
      any(x["range"]["start"]["line"] == graph_line and '"id"' in x["message"] for x in d), d)
check("modeline: a wrong value is reported on its line",
      any(x["range"]["start"]["line"] == cpu_line for x in d), d)

# The installed copy's form (file:// URL), as the package ships it.
absmode = "# yaml-language-server: $schema=" + (work / "schemas" / "hdag.schema.json").as_uri() + "\n"
d = open_doc(proj / "bad-abs.yaml", absmode + bad) or []
check("modeline (file:// URL): the missing field is reported",
      any('"id"' in x["message"] for x in d), d)

# VS Code-style settings, no modeline.
configure({(work / "schemas" / "hdag.schema.json").as_posix(): ["projects/*/*.yaml", "projects/*/*.yml"],
           (work / "schemas" / "cluster.schema.json").as_posix(): ["clusters/*.yaml"],
           (work / "schemas" / "settings.schema.json").as_posix(): ["smo.yaml"]})
d = open_doc(proj / "bad-settings.yaml", bad) or []
check("yaml.schemas globs: the missing field is reported without a modeline",
      any('"id"' in x["message"] for x in d), d)
d = open_doc(proj / "good-settings.yaml", good)
check("yaml.schemas globs: the example has no diagnostics", d == [], d)
cl = sorted((work / "state" / "clusters").glob("*.yaml"))
if cl:
    text = cl[0].read_text()
    d = open_doc(work / "state" / "clusters" / "zz-bad.yaml", re.sub(r"carbonIntensity: .*", "carbonIntensity: lots", text, count=1)) or []
    check("yaml.schemas globs: clusters/*.yaml is validated", any(x["range"]["start"]["line"] == next(i for i, l in enumerate(re.sub(r"carbonIntensity: .*", "carbonIntensity: lots", text, count=1).splitlines()) if "lots" in l) for x in d), d)
d = open_doc(work / "state" / "smo.yaml", (work / "state" / "smo.yaml").read_text())
check("yaml.schemas globs: the example smo.yaml has no diagnostics", d == [], d)

# Completion: the keys of a service's intent are offered.
text = rel + "hdaGraph:\n  \n"
uri = (proj / "complete.yaml").as_uri()
(proj / "complete.yaml").write_text(text)
version[0] += 1
send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": version[0], "text": text}}})
send({"jsonrpc": "2.0", "id": 99, "method": "textDocument/completion", "params": {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 2}}})
pump(20, lambda: 99 in responses)
res = (responses.get(99) or {}).get("result") or {}
items = res.get("items", res) if isinstance(res, dict) else res
labels = sorted(i["label"] for i in items or [])
check("completion under hdaGraph offers the schema's keys", {"services", "imVersion", "hdaGraphIntent"} <= set(labels), labels)

send({"jsonrpc": "2.0", "id": 100, "method": "shutdown"})
pump(5, lambda: 100 in responses)
send({"jsonrpc": "2.0", "method": "exit"})
p.wait(timeout=10)
print("yaml-language-server:", "all checks passed" if not failures else f"{len(failures)} failed")
sys.exit(1 if failures else 0)
