{
  "targets": [
    {
      "target_name": "poptop",
      "sources": ["native/poptop.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
