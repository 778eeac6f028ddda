"""TensorBoard entry point of tb_plus: flags, the plugin, its route table.

TensorBoard imports this module for every start (entry point group `tensorboard_plugins`), so it
imports only TensorBoard's `base_plugin` at the top; the store, numpy and the routes load in
`TbPlusLoader.load()`.
"""

import logging
import os

from tensorboard.plugins import base_plugin

PLUGIN_NAME = "tb_plus"

# (flag, default, type, help): one table feeds argparse and the README's flags table.
FLAGS = (
    ("tb_plus_cache_dir", "", str,
     "Where tb_plus keeps its index of the log directory (default: $TB_PLUS_CACHE_DIR, else ~/.cache/tb_plus). "
     "Never inside the log directory. An object-storage URL (s3://bucket/index) publishes the index there for "
     "other servers to reuse, with a local working copy under the default."),
    ("tb_plus_workers", 0, int, "Processes that index event files in parallel (0: one per CPU)."),
    ("tb_plus_verify_crc", "true", str, "Check every record's CRC32C while indexing: true or false."),
    ("tb_plus_live_seconds", 60.0, float,
     "A run counts as live when one of its event files was written within this many seconds."),
    ("tb_plus_roots", "", str,
     "Comma-separated directories (or object-storage URLs such as s3://bucket/prefix) whose subdirectories users "
     "may open as log directories from the tab (default: TensorBoard's --logdir only). Paths are resolved, "
     "symlinks included, and must stay inside a root."),
    ("tb_plus_memory_mb", 2048, int,
     "Memory budget for the log directories users have open: beyond it the least recently used are closed."),
    ("tb_plus_idle_close_seconds", 3600.0, float,
     "A log directory opened from the tab is closed when no request asked for it for this many seconds (it "
     "reopens from its index); at most 64 are open at once."),
    ("tb_plus_upload_dir", "", str,
     "Directory that receives uploaded runs (event files, .zip or .tar.gz of a run folder); uploads are off when empty."),
    ("tb_plus_upload_max_mb", 512, int, "Largest upload accepted, in MB (archives: also the most they may unpack to x4)."),
    ("tb_plus_upload_quota_mb", 10240, int,
     "Most the upload directory may hold, in MB (0: no quota); an upload that would exceed it is refused (413), "
     "nothing is deleted to make room."),
    ("tb_plus_upload_idle_seconds", 30.0, float,
     "An upload whose data stops arriving for this many seconds is dropped (408), freeing its thread and files."),
    ("tb_plus_stale_seconds", 1800.0, float,
     "A run that is not live counts as stale (stopped recently: finished, crashed or hung) until it has not "
     "been written for this many seconds; then it counts as finished."),
    ("tb_plus_remote_poll_seconds", 30.0, float,
     "Log directories on object storage (s3://, gs://, ... through fsspec): list their objects at most this "
     "often (one listing request per poll for up to 1000 objects)."),
    ("tb_plus_allowed_hosts", "", str,
     "Comma-separated Host names the tab answers (e.g. tb.example.com,*.corp.example; '*' for any), against "
     "DNS rebinding. Default: localhost, 127.0.0.1 and ::1 when TensorBoard listens on loopback only (its "
     "default), any name with --bind_all or a --host beyond loopback."),
    ("tb_plus_user_header", "", str,
     "Request header that carries the user's name, set by a trusted reverse proxy (oauth2-proxy: "
     "X-Auth-Request-User or X-Forwarded-User; Pomerium, a corporate SSO gateway: theirs). Off by default: no "
     "header is trusted. Only name it when clients can reach TensorBoard through that proxy alone."),
    ("tb_plus_groups_header", "", str,
     "Request header with the user's groups, comma-separated (e.g. X-Auth-Request-Groups); read only with "
     "--tb_plus_user_header."),
    ("tb_plus_access_file", "", str,
     "JSON file mapping users and groups to the roots they may open and whether they may upload (see the "
     "README's security section); requests without an identity get its \"default\". Read again when it "
     "changes. Without it every user has every root."),
    ("tb_plus_remote_budget", 0, int,
     "Most requests per hour one object-storage log directory may make (0: no cap); beyond it polls wait."),
)


def _parse_bool(flag, value):
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise base_plugin.FlagsError(f"--{flag} must be true or false, not {value!r}")


class TbPlusLoader(base_plugin.TBLoader):
    """Defines tb_plus's flags and builds the plugin."""

    def define_flags(self, parser):
        group = parser.add_argument_group("tb_plus")
        for name, default, type_, help_ in FLAGS:
            group.add_argument(f"--{name}", metavar=name.upper(), type=type_, default=default, help=help_)

    def fix_flags(self, flags):
        flags.tb_plus_verify_crc = _parse_bool("tb_plus_verify_crc", flags.tb_plus_verify_crc)
        if flags.tb_plus_workers < 0:
            raise base_plugin.FlagsError(f"--tb_plus_workers must be >= 0, not {flags.tb_plus_workers!r}")
        if flags.tb_plus_live_seconds <= 0:
            raise base_plugin.FlagsError(f"--tb_plus_live_seconds must be > 0, not {flags.tb_plus_live_seconds!r}")
        if flags.tb_plus_memory_mb <= 0 or flags.tb_plus_upload_max_mb <= 0:
            raise base_plugin.FlagsError("--tb_plus_memory_mb and --tb_plus_upload_max_mb must be > 0")
        if not flags.tb_plus_idle_close_seconds > 0:
            raise base_plugin.FlagsError(f"--tb_plus_idle_close_seconds must be > 0, not {flags.tb_plus_idle_close_seconds!r}")
        if flags.tb_plus_upload_quota_mb < 0 or not flags.tb_plus_upload_idle_seconds > 0:
            raise base_plugin.FlagsError("--tb_plus_upload_quota_mb must be >= 0 and --tb_plus_upload_idle_seconds > 0")
        if flags.tb_plus_stale_seconds < flags.tb_plus_live_seconds:
            raise base_plugin.FlagsError(
                f"--tb_plus_stale_seconds must be >= --tb_plus_live_seconds, not {flags.tb_plus_stale_seconds!r}"
            )
        if flags.tb_plus_groups_header and not flags.tb_plus_user_header:
            raise base_plugin.FlagsError("--tb_plus_groups_header needs --tb_plus_user_header")
        if flags.tb_plus_access_file:  # checked before TensorBoard serves: a bad file stops the start
            from tb_plus.access import AccessFileError

            try:
                _access(flags, _server_roots(flags, getattr(flags, "logdir", "") or ""))
            except AccessFileError as e:
                raise base_plugin.FlagsError(str(e)) from None

    def load(self, context):
        return TbPlusPlugin(context)


def _flag(flags, name):
    """A tb_plus flag's value, or its default when TensorBoard was built without our loader's
    flags (e.g. a plugin list given programmatically)."""
    default = next(d for n, d, _, _ in FLAGS if n == name)
    value = getattr(flags, name, default) if flags is not None else default
    return _parse_bool(name, value) if name == "tb_plus_verify_crc" else value


def _local_logdir(logdir_path) -> str:
    """TensorBoard's --logdir when tb_plus can read it (a path, or a URL fsspec may open), else ''."""
    from tb_plus.store.remote import is_url

    return logdir_path if logdir_path and ("://" not in logdir_path or is_url(logdir_path)) else ""


def _server_roots(flags, logdir_path):
    """The roots any request may open at most: --tb_plus_roots (else --logdir) and the upload directory."""
    from tb_plus.access import Roots

    roots = [r.strip() for r in str(_flag(flags, "tb_plus_roots") or "").split(",") if r.strip()]
    upload_dir = _flag(flags, "tb_plus_upload_dir") or None
    upload = [os.path.abspath(os.path.expanduser(upload_dir))] if upload_dir else []
    return Roots((roots or [_local_logdir(logdir_path)]) + upload)


def _access(flags, roots):
    """tb_plus.access.Access from the identity and access-file flags; raises AccessFileError."""
    from tb_plus.access import Access

    return Access(roots, _flag(flags, "tb_plus_access_file") or None,
                  user_header=_flag(flags, "tb_plus_user_header") or None,
                  groups_header=_flag(flags, "tb_plus_groups_header") or None,
                  uploads=bool(_flag(flags, "tb_plus_upload_dir")))


def _listens_beyond_loopback(flags) -> bool:
    """Whether TensorBoard serves other machines (--bind_all, or a --host that is not loopback)."""
    if flags is None:
        return False
    if getattr(flags, "bind_all", False):
        return True
    host = getattr(flags, "host", None)
    if host is None:
        return False  # TensorBoard's default: localhost
    import ipaddress

    name = host.strip("[]").lower()
    if name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True  # a name: it may resolve beyond loopback


def _warm_up(ld):
    """After each background refresh: rebuild what the first screen asks for (the run table and
    the default tag tree) if the refresh changed it, so requests find it ready."""
    from tb_plus.routes import diagnostics, runs, tags

    runs.run_columns(ld)
    tags.tag_tree(ld)
    diagnostics.warm(ld)


class TbPlusPlugin(base_plugin.TBPlugin):
    """The TB+ tab: serves the store's data as columns and the bundled frontend."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        from tb_plus.access import AccessFileError, Hosts, Registry

        flags = context.flags
        listed = [h.strip() for h in str(_flag(flags, "tb_plus_allowed_hosts") or "").split(",") if h.strip()]
        self.hosts = Hosts(listed or None, _listens_beyond_loopback(flags))
        self.logdir_path = context.logdir or getattr(flags, "logdir", "") or ""
        self.live_seconds = float(_flag(flags, "tb_plus_live_seconds"))
        self.stale_seconds = max(float(_flag(flags, "tb_plus_stale_seconds")), self.live_seconds)
        self._cache_dir = _flag(flags, "tb_plus_cache_dir") or None
        self._workers = _flag(flags, "tb_plus_workers") or None
        self._verify_crc = _flag(flags, "tb_plus_verify_crc")
        interval = getattr(flags, "reload_interval", 5.0) if flags is not None else 5.0
        # TensorBoard's --reload_interval: > 0 reload every N s, 0 load once at start-up
        self._interval = interval if interval and interval > 0 else None
        self.upload_dir = _flag(flags, "tb_plus_upload_dir") or None
        if self.upload_dir:
            self.upload_dir = os.path.abspath(os.path.expanduser(self.upload_dir))
            os.makedirs(self.upload_dir, exist_ok=True)
        self.upload_max = int(_flag(flags, "tb_plus_upload_max_mb")) << 20
        self.upload_quota = int(_flag(flags, "tb_plus_upload_quota_mb")) << 20
        self.upload_idle = float(_flag(flags, "tb_plus_upload_idle_seconds"))
        from tb_plus.store.remote import is_url, normalise

        self.remote_poll = float(_flag(flags, "tb_plus_remote_poll_seconds"))
        self.remote_budget = int(_flag(flags, "tb_plus_remote_budget"))
        local = _local_logdir(self.logdir_path)
        self.roots = _server_roots(flags, self.logdir_path)
        try:
            self.access = _access(flags, self.roots)
        except AccessFileError as e:
            raise base_plugin.FlagsError(str(e)) from None
        self.logdir = None
        self.logdir_real = None
        pinned = None
        if local:
            self.logdir = self._open(local, confine=None)  # the operator's own --logdir: as TensorBoard reads it
            self.logdir_real = normalise(local) if is_url(local) else os.path.realpath(local)
            pinned = (self.logdir_real, self.logdir)
        self.registry = Registry(
            lambda real, confine=None: self._open(real, confine=list(confine or self.roots.real)),
            int(_flag(flags, "tb_plus_memory_mb")) << 20,
            pinned=pinned,
            idle_seconds=float(_flag(flags, "tb_plus_idle_close_seconds")),
        )

    def _open(self, path, confine):
        from tb_plus.store import Logdir

        ld = Logdir(path, cache_dir=self._cache_dir, workers=self._workers, verify_crc=self._verify_crc,
                    confine=confine, poll_seconds=self.remote_poll, budget_per_hour=self.remote_budget)
        ld.start_background(interval=self._interval, on_refresh=_warm_up)
        return ld

    def grant(self, request):
        """What the request's user may open (tb_plus.access.Grant)."""
        access = getattr(self, "access", None)
        if access is None:  # an instance built without __init__ (route listings, tests)
            from tb_plus.access import Grant

            return Grant(None, (), self.roots, getattr(self, "upload_dir", None) is not None, everything=True)
        return access.grant(request.headers)

    def may_open_default(self, grant) -> bool:
        return self.logdir is not None and (grant.everything or grant.roots.allows(self.logdir_real))

    def refuse(self, request, grant, what, message):
        """Logs a refusal with who asked."""
        logging.getLogger("tb_plus").warning("tb_plus: refused %s for user %s from %s: %s", what[:300], grant.who,
                                             request.remote_addr, message)

    def logdir_for(self, request):
        """The log directory a request names with `logdir=` (checked against the roots the request's
        user may open), else the default one; raises TensorBoard's public errors (400, 403, 404)."""
        from tensorboard import errors

        from tb_plus.access import Refused

        grant = self.grant(request)
        raw = request.args.get("logdir")
        if not raw:
            ld = self.require_logdir()
            if not self.may_open_default(grant):
                message = (f"user {grant.who!r} may not open the default log directory; pick one of "
                           f"{(grant.roots.given + grant.roots.urls)[:20]}")
                self.refuse(request, grant, "the default log directory", message)
                raise errors.PermissionDeniedError(message)
            return ld
        try:
            real = grant.roots.resolve(raw)
        except Refused as e:
            self.refuse(request, grant, f"logdir {raw!r}", e.message)
            raise {400: errors.InvalidArgumentError, 403: errors.PermissionDeniedError}.get(
                e.code, errors.NotFoundError
            )(e.message)
        try:
            # confined to the user's roots: a link inside them never leads to another user's
            return self.registry.get(real, confine=tuple(grant.roots.real))
        except ValueError as e:  # e.g. no fsspec implementation installed for the URL's scheme
            raise errors.InvalidArgumentError(f"cannot open log directory {raw[:200]!r}: {e}")

    def get_plugin_apps(self):
        from tb_plus.routes import (aggregate, assets, compare, diagnostics, evaluation, hparams, logdirs, runs,
                                    series, tags, trace)

        apps = {
            "/index.js": assets.index_js,
            "/index.css": assets.index_css,
            "/standalone": assets.standalone_html,
            "/standalone.js": assets.standalone_js,
            "/runs": runs.route(self),
            "/tags": tags.route(self),
            "/keytags": tags.keytags_route(self),
            "/series": series.series_route(self),
            "/series_batch": series.series_batch_route(self),
            "/export": series.export_route(self),
            "/aggregate": aggregate.route(self),
            "/compare": compare.route(self),
            "/hparams": hparams.route(self),
            "/evaluation": evaluation.route(self),
            "/trace": trace.route(self),
            "/diagnostics": diagnostics.route(self),
            "/logdirs": logdirs.route(self),
            "/upload": logdirs.upload_route(self),
        }
        hosts = getattr(self, "hosts", None)  # None on an instance built without __init__ (route listings)
        return apps if hosts is None else {route: hosts.wrap(a) for route, a in apps.items()}

    def is_active(self):
        return True  # the tab is there whenever the plugin is installed; it shows its own empty state

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="TB+", disable_reload=False)

    def require_logdir(self):
        from tensorboard import errors

        if self.logdir is None:
            raise errors.NotFoundError(
                f"tb_plus needs a local --logdir; this TensorBoard has {self.logdir_path!r}"
            )
        return self.logdir
