"""A TLS terminator on loopback for tests/tls.rs, in front of a gRPC server.

stunnel cannot offer ALPN, and gRPC clients only speak HTTP/2 over TLS when
the server agrees to `h2` by ALPN; this one does. Accepts TLS with the
certificate CERT and key KEY on a free loopback port, forwards the bytes to
127.0.0.1:BACKEND, and prints its port once it listens.

    python3 tls_proxy.py BACKEND CERT KEY
"""

import asyncio
import ssl
import sys

backend, certificate, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", backend)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


async def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    context.set_alpn_protocols(["h2"])
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
