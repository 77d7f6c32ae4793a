# recover's controller-side helper: finds and packs Ansible modules with the installed
# ansible-core's own code, so a module runs on a host exactly as ansible-core packs it.
# One process per run, started on the first module recover does not build in. It speaks
# JSON lines: one request on stdin, one answer on stdout. It never sees a host, a task's
# arguments or a secret: it answers where a module is and gives its packed code.
import json
import os
import sys

_out = sys.stdout
sys.stdout = sys.stderr  # nothing ansible-core prints may reach the answers


def answer(obj):
    _out.write(json.dumps(obj) + "\n")
    _out.flush()


try:
    from ansible.release import __version__
    from ansible import constants as C
    from ansible.plugins.loader import init_plugin_loader, module_loader, action_loader, module_utils_loader, filter_loader, test_loader, lookup_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
except Exception as e:  # ansible-core is not installed for this Python
    answer({"ready": False, "msg": "%s: %s" % (type(e).__name__, e)})
    sys.exit(0)

init_plugin_loader([])
_dirs = set()
_playbook_dirs = []

answer({"ready": True, "version": __version__, "python": sys.executable})

MARK = "@@RECOVER_PARAMS@@"


def add_dirs(req):
    for d in req.get("playbook_dirs") or []:
        if d not in _playbook_dirs:
            _playbook_dirs.append(d)
            AnsibleCollectionConfig.playbook_paths = list(_playbook_dirs)
    # Each kind of plugin folder, into the loader ansible-core reads it with.
    for key, loader in (("library", module_loader), ("module_utils", module_utils_loader), ("filter_plugins", filter_loader),
                        ("test_plugins", test_loader), ("lookup_plugins", lookup_loader), ("action_plugins", action_loader)):
        for d in req.get(key) or []:
            if (key, d) not in _dirs and os.path.isdir(d):
                _dirs.add((key, d))
                loader.add_directory(d)


def searched():
    paths = list(AnsibleCollectionConfig.collection_paths or [])
    try:
        paths = [p for p in module_loader._get_paths()] + paths
    except Exception:
        pass
    return paths


def find(req):
    add_dirs(req)
    name = req["name"]
    colls = req.get("collections") or None
    try:
        ctx = module_loader.find_plugin_with_context(name, collection_list=colls)
    except Exception as e:  # a tombstone, a redirect loop
        return {"found": False, "msg": str(e), "removed": True}
    if not ctx.resolved or not ctx.plugin_resolved_path:
        return {"found": False, "msg": ctx.exit_reason or "not found", "searched": searched(), "alias_of": action_alias(name, colls)}
    fqcn = ctx.resolved_fqcn or name
    path = ctx.plugin_resolved_path
    if path.endswith((".ps1", ".psm1", ".cs")):
        return {"found": False, "msg": "%s is a PowerShell module (Windows hosts)" % fqcn, "removed": True}
    # ansible-core runs a task through the action plugin of the task's name when there is one.
    action = None
    for n in (name, fqcn):
        try:
            a = action_loader.find_plugin_with_context(n, collection_list=colls)
            if a.resolved and a.plugin_resolved_path:
                action = a.plugin_resolved_path
                break
        except Exception:
            pass
    with open(path, "rb") as f:
        head = f.read()
    style = "python" if (b"from ansible.module_utils" in head or b"import ansible.module_utils" in head or b"<<INCLUDE_ANSIBLE_MODULE_COMMON>>" in head) else "other"
    return {
        "found": True,
        "fqcn": fqcn,
        "path": path,
        "action": action,
        "style": style,
        "redirects": list(ctx.redirect_list or []),
        "deprecations": [str(w) for w in (ctx.deprecation_warnings or [])],
    }


def action_alias(name, colls):
    """An action plugin with no module that is ansible-core's own action under another name
    (`from ansible.plugins.action.debug import ActionModule`): the builtin action it is."""
    try:
        a = action_loader.find_plugin_with_context(name, collection_list=colls)
        if not a.resolved or not a.plugin_resolved_path:
            return None
        cls = getattr(action_loader.get(name, collection_list=colls, class_only=True), "__module__", "") or ""
    except Exception:
        return None
    for prefix in ("ansible.plugins.action.", "ansible_collections.ansible.builtin.plugins.action."):
        if cls.startswith(prefix):
            return cls[len(prefix):]
    return None


def build(req):
    from ansible.executor.module_common import modify_module
    from ansible.template import Templar
    from ansible.parsing.dataloader import DataLoader

    add_dirs(req)
    name = req["name"].rsplit(".", 1)[-1]
    built = modify_module(
        module_name=name,
        module_path=req["path"],
        module_args={},
        templar=Templar(loader=DataLoader()),
        task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
        module_compression=C.DEFAULT_MODULE_COMPRESSION,
    )
    if built.module_style != "new":
        return {"ok": False, "msg": "its style is '%s': recover runs modules written for AnsibleModule" % built.module_style}
    code = built.b_module_data.decode("utf-8")
    line = "params=%r," % json.dumps({"ANSIBLE_MODULE_ARGS": {}})
    if line not in code:
        return {"ok": False, "msg": "ansible-core %s packed it in a form recover does not know" % __version__}
    return {"ok": True, "code": code.replace(line, "params=%s," % MARK, 1), "mark": MARK}


def doc(req):
    found = find(req)
    if not found.get("found"):
        return found
    try:
        from ansible.utils.plugin_docs import get_docstring
        from ansible.plugins.loader import fragment_loader
        d = get_docstring(found["path"], fragment_loader)[0] or {}
    except Exception as e:
        d = {"short_description": "(its documentation could not be read: %s)" % e}

    def line(v):
        if isinstance(v, list):
            v = " ".join(str(x) for x in v)
        return str(v or "").strip()

    opts = []
    for name, o in sorted((d.get("options") or {}).items()):
        o = o or {}
        opts.append({"name": name, "type": o.get("type", "str"), "required": bool(o.get("required")), "default": o.get("default"),
                     "aliases": o.get("aliases") or [], "description": line(o.get("description"))})
    found.update({"summary": line(d.get("short_description")), "options": opts,
                  "check_mode": line(((d.get("attributes") or {}).get("check_mode") or {}).get("support"))})
    return found


def _loader(kind):
    return {"filter": filter_loader, "test": test_loader, "lookup": lookup_loader}[kind]


def _plugin(kind, name):
    if kind == "lookup":
        from ansible.template import Templar
        from ansible.parsing.dataloader import DataLoader
        return lookup_loader.get(name, loader=DataLoader(), templar=Templar(loader=DataLoader()))
    return _loader(kind).get(name)


def has(req):
    add_dirs(req)
    try:
        return {"found": _plugin(req["kind"], req["name"]) is not None}
    except Exception as e:
        return {"found": False, "msg": str(e)}


def plain(v):
    """A plugin's result as JSON: sets and tuples as lists, anything else by its str()."""
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: plain(x) for k, x in v.items()}
        # Keys that are not strings (a counter's numbers) keep their type: as pairs.
        return {"__recover_pairs": [[plain(k), plain(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if hasattr(v, "__iter__") and not isinstance(v, (bytes, bytearray)):
        return [plain(x) for x in v]
    return str(v)


def call(req):
    add_dirs(req)
    kind, name = req["kind"], req["name"]
    p = _plugin(kind, name)
    if p is None:
        return {"ok": False, "msg": "no %s named %r in the installed ansible-core or collections" % (kind, name)}
    args, kwargs = req.get("args") or [], req.get("kwargs") or {}
    try:
        if kind == "lookup":
            v = p.run(args, variables={}, **kwargs)
        else:
            v = p.j2_function(req.get("value"), *args, **kwargs)
    except Exception as e:
        return {"ok": False, "msg": "%s: %s" % (type(e).__name__, e)}
    return {"ok": True, "value": plain(v)}


for raw in sys.stdin:
    try:
        req = json.loads(raw)
        op = req.get("op")
        if op == "find":
            answer(find(req))
        elif op == "has":
            answer(has(req))
        elif op == "call":
            answer(call(req))
        elif op == "doc":
            answer(doc(req))
        elif op == "build":
            answer(build(req))
        else:
            answer({"ok": False, "msg": "unknown request %r" % op})
    except Exception as e:
        answer({"ok": False, "found": False, "msg": "%s: %s" % (type(e).__name__, e)})
