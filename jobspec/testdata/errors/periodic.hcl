job "p" {
  type = "batch"
  periodic {
    cron      = "not a cron"
    time_zone = "Mars/Olympus"
  }
  group "g" {
    task "t" {
      driver = "exec"
    }
  }
}
