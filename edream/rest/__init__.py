"""The integrators' REST API (``/api/v1``): resources declared in :mod:`~edream.rest.resources`, request and
response models generated from the Avro contracts (:mod:`~edream.rest.avro_models`), ClickHouse reads
(:mod:`~edream.rest.queries`), broker-acknowledged submissions (:mod:`~edream.rest.producer`), RFC 9457 errors
(:mod:`~edream.rest.problems`), the app (:mod:`~edream.rest.app`), and its hosting in the platform worker
(:mod:`~edream.rest.hosting`, :mod:`~edream.rest.server`)."""
