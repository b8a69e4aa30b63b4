job "broken" {
  group "g" {
    task "t" {
      driver = "exec
    }
  }
