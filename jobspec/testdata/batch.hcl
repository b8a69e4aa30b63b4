job "nightly" {
  type        = "batch"
  datacenters = ["dc1"]

  periodic {
    cron             = "0 3 * * *"
    prohibit_overlap = true
    time_zone        = "UTC"
  }

  parameterized {
    payload       = "optional"
    meta_required = ["target"]
  }

  group "run" {
    restart {
      attempts = 1
    }

    task "backup" {
      driver = "raw_exec"
      config {
        command = "/usr/local/bin/backup"
        args    = ["--target", "${NOMAD_META_target}"]
      }
      dispatch_payload {
        file = "input.json"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
