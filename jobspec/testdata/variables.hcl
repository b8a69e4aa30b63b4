variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "image" {
  type = string
  validation {
    condition     = length(var.image) > 0
    error_message = "The image must not be empty."
  }
}

variable "replicas" {
  type    = number
  default = 2
}

variable "ports" {
  type = list(object({
    name = string
    to   = number
  }))
  default = [
    { name = "http", to = 8080 },
    { name = "metrics", to = 9100 },
  ]
}

locals {
  name   = "app-${local.suffix}"
  suffix = lower("PROD")
  labels = { for p in var.ports : p.name => p.to }
}

job "vars" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    image_hash = substr(sha256(var.image), 0, 8)
    joined     = join(",", keys(local.labels))
    upper      = upper(local.name)
    encoded    = jsonencode({ a = 1 })
    formatted  = format("%s-%03d", local.name, var.replicas)
    dollar     = "$${not_interpolated}"
    later      = timeadd("2024-01-01T00:00:00Z", "1h")
  }

  group "app" {
    count = var.replicas

    network {
      dynamic "port" {
        for_each = var.ports
        labels   = [port.value.name]
        content {
          to = port.value.to
        }
      }
    }

    dynamic "task" {
      for_each = ["one", "two"]
      iterator = t
      labels   = ["task-${t.value}"]
      content {
        driver = "docker"
        config {
          image = var.image
          args  = [for p in var.ports : "--port=${p.name}:${NOMAD_PORT_http}"]
        }
        env {
          INDEX = t.key
          ADDR  = "${attr.unique.network.ip-address}:${NOMAD_PORT_http}"
        }
      }
    }
  }
}
