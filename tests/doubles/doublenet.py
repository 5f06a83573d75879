# SPDX-License-Identifier: MIT
"""How the protocol doubles listen: the port file and https (shared by both doubles).

  add_listen_args(ap)      --port-file FILE, --tls-cert PEM, --tls-key PEM, --tls-client-ca PEM
  listening(server, args)  after the server has bound its port: serve https when --tls-cert is
                           given (client certificates required when --tls-client-ca is), then
                           write the bound port to --port-file (atomically), so a start script
                           that passed --port 0 learns the port the kernel chose
  hang_up(handler)         fault injection: close the connection without a reply
  send_cut_short(handler, body)  fault injection: a 200 that promises 100 bytes more than it
                           sends, then hangs up (libcurl: CURLE_PARTIAL_FILE)
Standard library only.
"""
import os
import socket
import ssl


def add_listen_args(ap):
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--tls-cert", help="serve https with this certificate (PEM)")
    ap.add_argument("--tls-key", help="the certificate's private key (PEM)")
    ap.add_argument("--tls-client-ca", help="require client certificates signed by this CA (PEM)")


def listening(server, args):
    if args.tls_cert:
        _serve_tls(server, args.tls_cert, args.tls_key, args.tls_client_ca)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(tmp, args.port_file)


def hang_up(handler):
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def send_cut_short(handler, body):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body) + 100))
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    hang_up(handler)


def _serve_tls(server, cert, key, client_ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    plain = server.finish_request

    def finish_request(request, client_address):
        # The handshake runs in the request's own thread, so a client that stalls or refuses
        # the certificate never blocks the accept loop.
        tls = ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            # The client refused our certificate or sent none we accept. Like a real server,
            # close gently: with TLS 1.3 the client may already have sent its request, and
            # closing with it unread would reset the connection before the client reads the
            # alert that says why.
            _linger_close(tls)
            return
        try:
            plain(tls, client_address)
        finally:
            tls.close()

    server.finish_request = finish_request


def _linger_close(sock):
    try:
        sock.settimeout(2)
        socket.socket.shutdown(sock, socket.SHUT_WR)  # the raw socket: the alert is already sent
        while socket.socket.recv(sock, 65536):
            pass
    except OSError:
        pass
    finally:
        sock.close()
