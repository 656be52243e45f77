"""The code that runs inside a plugin worker process.

Nothing here imports the server side of Weir: a worker starts with the plugin
environment's Python, the standard library and pyarrow. `main` reads frames from
the server (`protocol`), runs each plugin call in its own thread (`runtime`, with
`plugin_code` loading the plugin, `local_api` giving it `influxdb3_local`, `cache`
and `responses`), and sends back results, log lines and requests (`channel`).
"""
