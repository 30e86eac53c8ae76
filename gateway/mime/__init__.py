"""MIME below the message walk: the fast tree parser, header parameters, header and charset
decoding. Walking a message into parts is an extractor (`gateway.extract.message`)."""
