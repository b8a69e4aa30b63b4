variable "needed" {
  type = string
}

variable "count" {
  type    = number
  default = "many"
}

locals {
  a = local.b
  b = local.a
}

job "vars" {
  datacenters = [var.nope]
  group "g" {
    count = var.needed
    task "t" {
      driver = "exec"
      config {
        command = file("does-not-exist.txt")
      }
    }
  }
}
