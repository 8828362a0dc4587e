"""The dashboard's static files, served by Django itself in the one-process embedded mode.

``django.contrib.staticfiles.views.serve`` answers with a FileResponse whose file is a sync
iterator; under ASGI Django then warns "StreamingHttpResponse must consume synchronous iterators"
(and buffers it in a thread) for every file. Here the same response streams through an async
iterator instead, keeping every header (Content-Type, Content-Length, Last-Modified, 304s).
"""

from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.http import FileResponse

CHUNK = 64 * 1024


async def _read_chunks(filelike):
    try:
        # Local, small, usually page-cached files: a read costs less than a hop to a thread.
        while chunk := filelike.read(CHUNK):
            yield chunk
    finally:
        filelike.close()


def serve(request, path, insecure=True, **kwargs):
    response = staticfiles_serve(request, path, insecure=insecure, **kwargs)
    if isinstance(response, FileResponse) and response.file_to_stream is not None:
        filelike = response.file_to_stream
        response.file_to_stream = None
        response.streaming_content = _read_chunks(filelike)
        response._resource_closers.append(filelike.close)  # also when the client goes away mid-file
    return response
