"""The weather feed: an Open-Meteo-compatible forecast API polled per site into ``weather.hourly.v1``.

* :mod:`.config` - ``weather.yaml``: the service and the sites (errors name file, entry and field);
* :mod:`.openmeteo` - the API's request and its answer as WeatherHour records (pure, validated);
* :mod:`.clearsky` - clear-sky GHI per hour at a site (pvlib);
* :mod:`.feed` - the polling loop: retries with backoff, sends only hours that changed, Prometheus metrics;
* :mod:`.cli` - ``edream weather feed`` and ``edream weather sim`` (the simulated service of
  :mod:`tools.sim.weather_service`).
"""
