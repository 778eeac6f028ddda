"""/logdirs: the allowed roots, the open log directories and completions for the picker;
/upload: a new run from uploaded event files or an archive of a run folder."""

import logging
import os

from tensorboard import errors
from tensorboard.backend import http_util

from tb_plus.routes import app, arg, respond_json

UPLOAD_HEADER = "X-TB-Plus-Upload"  # a custom header: browsers send it cross-origin only after a CORS preflight


def logdirs_impl(plugin, prefix=""):
    default = plugin.logdir.path if plugin.logdir is not None else None
    return {
        "default": default,
        "roots": plugin.roots.given,
        "open": plugin.registry.paths(),
        "upload": plugin.upload_dir is not None,
        "upload_dir": plugin.upload_dir,
        "upload_max_bytes": plugin.upload_max if plugin.upload_dir else 0,
        "dirs": plugin.roots.complete(prefix or ""),
    }


def route(plugin):
    def handler(request):
        prefix = arg(request, "prefix", "")
        if len(prefix) > 4096 or "\0" in prefix:
            raise errors.InvalidArgumentError("parameter 'prefix' must be a path of at most 4096 characters")
        return respond_json(request, logdirs_impl(plugin, prefix))

    return app(handler)


def upload_route(plugin):
    from werkzeug.exceptions import ClientDisconnected

    from tb_plus.upload import Limits, UploadError, receive

    def handler(request):
        if plugin.upload_dir is None:
            raise errors.PermissionDeniedError("uploads are off on this server (start it with --tb_plus_upload_dir)")
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
            logging.getLogger("tb_plus").warning("tb_plus: upload refused from %s: %s", request.remote_addr, e.message)
            return http_util.Respond(request, f"Upload refused: {e.message}", "text/plain", code=e.code)
        info["logdir"] = plugin.upload_dir
        info["path"] = os.path.join(plugin.upload_dir, info["run"])
        return respond_json(request, info)

    return app(handler)
