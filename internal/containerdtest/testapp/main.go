// Command testapp is the program inside berth's test image. It runs a
// sequence of verbs from its arguments, left to right:
//
//	print STDOUT STDERR   write STDOUT+"\n" to stdout and STDERR+"\n" to stderr
//	exit N                exit with code N
//	sleep DURATION        sleep (Go duration, e.g. 500ms, 1h)
//	serve ADDR            serve HTTP on ADDR: 200 "ok <hostname>" (never returns)
//	env                   print the environment, sorted, one per line
//	cat                   copy stdin to stdout until EOF
//	trap                  print each signal's name as it arrives; on SIGTERM
//	                      print "terminated" and exit 0 (never returns)
//	ls PATH               print the names in directory PATH, one per line
//	write PATH TEXT       write TEXT to file PATH
//	read PATH             print the contents of file PATH
//	hostname              print the hostname
//	ignore                ignore SIGTERM and SIGINT from here on (a Go
//	                      program as PID 1 otherwise exits 2 on SIGTERM)
//	alloc MB              allocate and touch MB mebibytes (kept until exit)
//
// Verbs combine: "print a b sleep 1s exit 3". An unknown verb after a
// known one, or a failing one, exits 2 with a message on stderr.
//
// When the first argument is not a verb, or there are no arguments (a real
// job's own command line, e.g. redis' flags, run against this image through
// a registry mirror), it stands in for a long-running service: it prints
// "testapp service: ARGS" and waits for SIGTERM or SIGINT, then exits 0.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var keep [][]byte // memory held by "alloc"

var verbArgs = map[string]int{"print": 2, "exit": 1, "sleep": 1, "serve": 1, "ls": 1, "write": 2, "alloc": 1, "read": 1,
	"env": 0, "cat": 0, "trap": 0, "ignore": 0, "hostname": 0}

func main() {
	args := os.Args[1:]
	if _, ok := verbArgs[firstOf(args)]; !ok {
		service(args)
		return
	}
	for len(args) > 0 {
		verb := args[0]
		need := verbArgs[verb]
		if len(args) < 1+need {
			fail("%s needs %d argument(s)", verb, need)
		}
		a := args[1 : 1+need]
		args = args[1+need:]
		switch verb {
		case "print":
			fmt.Fprintln(os.Stdout, a[0])
			fmt.Fprintln(os.Stderr, a[1])
		case "exit":
			n, err := strconv.Atoi(a[0])
			if err != nil {
				fail("exit: %v", err)
			}
			os.Exit(n)
		case "sleep":
			d, err := time.ParseDuration(a[0])
			if err != nil {
				fail("sleep: %v", err)
			}
			time.Sleep(d)
		case "serve":
			host, _ := os.Hostname()
			http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "ok %s\n", host) })
			fail("serve: %v", http.ListenAndServe(a[0], nil))
		case "env":
			env := os.Environ()
			sort.Strings(env)
			for _, kv := range env {
				fmt.Println(kv)
			}
		case "cat":
			if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
				fail("cat: %v", err)
			}
		case "trap":
			trap()
		case "ls":
			entries, err := os.ReadDir(a[0])
			if err != nil {
				fail("ls: %v", err)
			}
			for _, e := range entries {
				fmt.Println(e.Name())
			}
		case "write":
			if err := os.WriteFile(a[0], []byte(a[1]), 0o644); err != nil {
				fail("write: %v", err)
			}
		case "ignore":
			signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		case "read":
			b, err := os.ReadFile(a[0])
			if err != nil {
				fail("read: %v", err)
			}
			os.Stdout.Write(b)
		case "hostname":
			h, _ := os.Hostname()
			fmt.Println(h)
		case "alloc":
			mb, err := strconv.Atoi(a[0])
			if err != nil {
				fail("alloc: %v", err)
			}
			for i := 0; i < mb; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = 1
				}
				keep = append(keep, b)
			}
		default:
			fail("unknown verb %q", verb)
		}
	}
}

func firstOf(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// service behaves like a daemon that ignores its flags: it runs until it
// is asked to stop, and stops cleanly.
func service(args []string) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	fmt.Printf("testapp service: %s\n", strings.Join(args, " "))
	<-c
	os.Exit(0)
}

func trap() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
	fmt.Println("trapping")
	for s := range c {
		if s == syscall.SIGTERM {
			fmt.Println("terminated")
			os.Exit(0)
		}
		fmt.Println(signalName(s))
	}
}

func signalName(s os.Signal) string {
	names := map[os.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGQUIT: "SIGQUIT"}
	if n, ok := names[s]; ok {
		return n
	}
	return s.String()
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "testapp: "+format+"\n", a...)
	os.Exit(2)
}
