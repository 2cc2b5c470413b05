"""Packet-capture decoder for ISO 15118 / DIN SPEC 70121 charging sessions.

``iso15118 decode CAPTURE`` (see :mod:`iso15118.capture.cli`) or, from Python::

    from iso15118.capture.analyzer import CaptureDecoder
    dec = CaptureDecoder("session.pcap", keylog=None)
    for event in dec.events():          # streamed, memory flat in the capture size
        print(event.ts, event.direction, event.name, event.response_code)

Modules, in pipeline order:

================  ================================================================================
``pcapio``        streaming pcap / pcapng reader (gzip too); damage becomes ``ReadProblem`` items
``packets``       Ethernet / SLL / SLL2 / NULL / raw IP, IPv4 / IPv6, TCP / UDP headers (``struct``)
``slac``          HomePlug AV / Green PHY management messages, SLAC fields (ISO 15118-3)
``reassembly``    TCP reassembly per direction; retransmissions, overlaps, reordering, gaps reported
``tls_decrypt``   TLS 1.3 / 1.2 decryption from an NSS key log (SSLKEYLOGFILE)
``framing``       V2GTP framing with signature search and resynchronisation
``decode``        the EXI decode step (``iso15118.exi``), memoised; never raises
``physical``      physical values in a decoded tree (-2 / DIN PhysicalValue, -20 RationalNumber)
``keyfields``     the key fields a timeline line shows, formed when an event's ``fields`` are read
``limits``        negotiated protocol -> schema; message timeouts and performance times
``analyzer``      the pipeline: records in, timeline ``Event`` objects out
``summary``       the ``--summary`` report, built incrementally
``render``        coloured timeline (rich), JSON, JSON Lines, XML
``pcapwriter``    pcap / pcapng writers and a TCP flow synthesiser (bench, tests)
``bench``         ``bench(path, repeat)``: messages/s and peak memory on a repeated real session;
                  ``bench_fleet``: many captures, 1 vs N workers
``job``           one capture to one output (the same for every runner)
``batch``         many captures: files / directories / globs, ``--workers N``, ``--scheduler`` (Dask)
``dataset``       the Parquet dataset: its schema (``TABLES``) and rows (docs/dataset.md)
``query``         DuckDB over a dataset (``iso15118 query``)
``fleetreport``   the fleet view as one HTML page of inline SVG (``iso15118 report``)
================  ================================================================================
"""
