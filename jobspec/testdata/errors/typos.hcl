job "typos" {
  datacenter = ["dc1"]

  group "g" {
    cout = 2

    restat {
      attempts = 1
    }

    task "t" {
      driver = "docker"
      resources {
        memroy = 10
      }
      kill_timeout = "soon"
    }
  }

  group "g" {
    task "u" {
      driver = "exec"
      config = "nope"
    }
  }
}
