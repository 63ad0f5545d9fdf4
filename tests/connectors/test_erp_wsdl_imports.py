"""A WSDL is read only from its own host (issue 19 item 13): an xsd:import pointing at another
address — here another loopback port, standing for an internal service — is refused before it
is fetched, and the other server records that nobody asked it."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.base import MemoryBinder, PermanentError, RetryPolicy
from connectors.erp_soap import ErpSoapConnector

SCHEMA = b"""<?xml version="1.0"?>
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:evil">
  <xsd:element name="Nothing" type="xsd:string"/>
</xsd:schema>"""


def wsdl(schema_url: str) -> bytes:
    return f"""<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
             xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tns="urn:shop" targetNamespace="urn:shop">
  <types>
    <xsd:schema targetNamespace="urn:shop">
      <xsd:import namespace="urn:evil" schemaLocation="{schema_url}"/>
      <xsd:element name="Ping" type="xsd:string"/>
    </xsd:schema>
  </types>
  <message name="PingIn"><part name="body" element="tns:Ping"/></message>
  <portType name="Port"><operation name="Ping"><input message="tns:PingIn"/></operation></portType>
  <binding name="Binding" type="tns:Port">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Ping"><soap:operation soapAction="Ping"/><input><soap:body use="literal"/></input></operation>
  </binding>
  <service name="Shop"><port name="P" binding="tns:Binding"><soap:address location="http://127.0.0.1:1/soap"/></port>
  </service>
</definitions>""".encode()


class Server:
    """One loopback HTTP server answering fixed bodies by path, recording every path asked."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.asked: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.asked.append(self.path)
                body = server.bodies.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    erp, internal = Server(), Server()
    yield erp, internal
    for s in (erp, internal):
        s.httpd.shutdown()
        s.httpd.server_close()


def connector(url: str) -> ErpSoapConnector:
    return ErpSoapConnector("erp", url, "hub", "pw", MemoryBinder(), RetryPolicy(attempts=1), auth="basic")


def test_an_xsd_import_from_another_host_is_refused_and_never_fetched(servers):
    erp, internal = servers
    internal.bodies["/evil.xsd"] = SCHEMA
    erp.bodies["/erp.wsdl"] = wsdl(f"{internal.url}/evil.xsd")
    with pytest.raises(PermanentError, match="not on the WSDL's own host"):
        connector(f"{erp.url}/erp.wsdl")._read_wsdl(f"{erp.url}/erp.wsdl")
    assert internal.asked == []                      # the internal address was never asked
    assert erp.asked == ["/erp.wsdl"]


def test_an_xsd_import_from_the_wsdls_own_host_is_read(servers):
    erp, _ = servers
    erp.bodies["/evil.xsd"] = SCHEMA
    erp.bodies["/erp.wsdl"] = wsdl(f"{erp.url}/evil.xsd")
    client = connector(f"{erp.url}/erp.wsdl")._read_wsdl(f"{erp.url}/erp.wsdl")
    assert "Ping" in client.service._operations
    assert erp.asked == ["/erp.wsdl", "/evil.xsd"]
