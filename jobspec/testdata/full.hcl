# A job using most of the job specification.
job "web" {
  region      = "global"
  datacenters = ["dc1", "dc2"]
  type        = "service"
  priority    = 70
  node_pool   = "default"

  meta {
    owner = "platform"
    tier  = 1
  }

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  constraint {
    distinct_hosts = true
  }

  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
    weight    = 80
  }

  spread {
    attribute = "${node.datacenter}"
    weight    = 100
    target "dc1" {
      percent = 60
    }
    target "dc2" {
      percent = 40
    }
  }

  update {
    max_parallel     = 2
    min_healthy_time = "15s"
    healthy_deadline = "5m"
    canary           = 1
    auto_revert      = true
  }

  migrate {
    max_parallel = 1
  }

  group "frontend" {
    count = 3

    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
      port "admin" {
        static = 9090
      }
      dns {
        servers = ["1.1.1.1"]
      }
    }

    restart {
      attempts = 3
      delay    = "10s"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "1h"
      unlimited      = true
    }

    ephemeral_disk {
      size = 500
    }

    volume "data" {
      type      = "host"
      source    = "data"
      read_only = false
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"
      tags     = ["urlprefix-/", "v1"]

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
        header {
          Authorization = ["Basic x"]
        }
        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    shutdown_delay = "5s"

    task "server" {
      driver = "docker"

      config {
        image = "nginx:1.27"
        ports = ["http"]
        args  = ["-listen", ":${NOMAD_PORT_http}"]
        mount {
          type   = "bind"
          source = "local"
          target = "/etc/nginx/conf.d"
        }
        logging {
          type = "json-file"
        }
      }

      env {
        LISTEN = "0.0.0.0:${NOMAD_PORT_http}"
        NODE   = "${node.unique.name}"
      }

      resources {
        cpu        = 500
        memory     = 256
        memory_max = "1GiB"
      }

      template {
        destination = "local/app.conf"
        change_mode = "signal"
        change_signal = "SIGHUP"
        data        = <<EOT
server {
  listen {{ env "NOMAD_PORT_http" }};
  root ${NOMAD_TASK_DIR};
}
EOT
      }

      artifact {
        source      = "https://example.com/app.tar.gz"
        destination = "local/app"
        options {
          checksum = "sha256:abcd"
        }
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      logs {
        max_files     = 5
        max_file_size = 20
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }

    task "sidecar" {
      driver = "exec"
      lifecycle {
        hook    = "prestart"
        sidecar = true
      }
      config {
        command = "/bin/sleep"
        args    = ["infinity"]
      }
    }
  }
}
