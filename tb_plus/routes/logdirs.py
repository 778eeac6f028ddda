"""/logdirs: the allowed roots, the open log directories and completions for the picker;
/upload: a new run from uploaded event files or an archive of a run folder."""

import logging
import os

from tensorboard import errors
from tensorboard.backend import http_util

from tb_plus.routes import app, arg, respond_json

UPLOAD_HEADER = "X-TB-Plus-Upload"  # a custom header: browsers send it cross-origin only after a CORS preflight


def logdirs_impl(plugin, prefix="", grant=None):
    """The picker's data, as the request's user may see it (`grant`: tb_plus.access.Grant)."""
    if grant is None or grant.everything:
        roots = plugin.roots
        default = plugin.logdir.path if plugin.logdir is not None else None
        opened = plugin.registry.paths()
        upload = plugin.upload_dir is not None and (grant is None or grant.upload)
    else:
        roots = grant.roots
        default = plugin.logdir.path if plugin.may_open_default(grant) else None
        opened = [p for p in plugin.registry.paths() if roots.allows(p)]
        upload = plugin.upload_dir is not None and grant.upload
    out = {
        "default": default,
        "roots": roots.given + roots.urls,
        "open": opened,
        "upload": upload,
        "upload_dir": plugin.upload_dir if upload else None,
        "upload_max_bytes": plugin.upload_max if upload else 0,
        "dirs": roots.complete(prefix or ""),
    }
    if grant is not None and grant.user is not None:
        out["user"] = grant.user
    return out


def route(plugin):
    def handler(request):
        prefix = arg(request, "prefix", "")
        if len(prefix) > 4096 or "\0" in prefix:
            raise errors.InvalidArgumentError("parameter 'prefix' must be a path of at most 4096 characters")
        return respond_json(request, logdirs_impl(plugin, prefix, plugin.grant(request)))

    return app(handler)


def upload_route(plugin):
    from werkzeug.exceptions import ClientDisconnected

    from tb_plus.upload import Limits, UploadError, receive

    def handler(request):
        if plugin.upload_dir is None:
            raise errors.PermissionDeniedError("uploads are off on this server (start it with --tb_plus_upload_dir)")
        grant = plugin.grant(request)
        if not grant.upload:
            message = f"user {grant.who!r} may not upload on this server (the access file says who may)"
            plugin.refuse(request, grant, "an upload", message)
            raise errors.PermissionDeniedError(message)
        if request.method != "POST":
            raise errors.InvalidArgumentError(f"upload with POST, not {request.method}")
        if request.headers.get(UPLOAD_HEADER) != "1":
            raise errors.PermissionDeniedError(f"uploads need the header {UPLOAD_HEADER}: 1")
        limits = Limits(max_bytes=plugin.upload_max, max_unpacked=4 * plugin.upload_max,
                        quota_bytes=getattr(plugin, "upload_quota", 0))
        # A client that stops sending holds a thread and a staging folder: reads time out instead.
        sock = request.environ.get("werkzeug.socket")
        previous = sock.gettimeout() if sock is not None else None
        if sock is not None:
            sock.settimeout(getattr(plugin, "upload_idle", 30.0))
        try:
            info = receive(
                request.stream,
                filename=arg(request, "filename", ""),
                run=arg(request, "run", ""),
                upload_dir=plugin.upload_dir,
                limits=limits,
                content_length=request.content_length,
            )
        except ClientDisconnected:
            e = UploadError(400, "upload interrupted: the client stopped sending (or sent nothing for "
                                 f"{getattr(plugin, 'upload_idle', 30.0):g} s) before the declared length")
        except UploadError as refused:
            e = refused
        else:
            e = None
        finally:
            if sock is not None:
                try:
                    sock.settimeout(previous)
                except OSError:
                    pass
        if e is not None:
            logging.getLogger("tb_plus").warning("tb_plus: upload refused for user %s from %s: %s", grant.who,
                                                 request.remote_addr, e.message)
            return http_util.Respond(request, f"Upload refused: {e.message}", "text/plain", code=e.code)
        info["logdir"] = plugin.upload_dir
        info["path"] = os.path.join(plugin.upload_dir, info["run"])
        return respond_json(request, info)

    return app(handler)
