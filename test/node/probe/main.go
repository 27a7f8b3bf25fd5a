// probe is the one small static program the node tests put into images (no registry here):
//
//	probe sleep          the pod sandbox's pause: sleeps until SIGTERM/SIGINT, then exits 0
//	probe env NAME...    writes "NAME sha256=<hex>" (or "NAME unset") per variable to the
//	                     termination message and exits: tests compare digests, so a
//	                     resolved secret's value never lands in pod status
//	probe alloc MIB      allocates and touches MIB MiB, then sleeps (an OOM kill under a limit)
//	probe serve PORT     answers HTTP GET with the pod's hostname, until SIGTERM
//	probe get URL        GETs URL and writes "<status> <body>" to the termination message
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe sleep | env NAME... | alloc MIB | serve PORT")
	}
	switch os.Args[1] {
	case "sleep":
		waitForSignal()
	case "env":
		var lines []string
		for _, name := range os.Args[2:] {
			value, ok := os.LookupEnv(name)
			if !ok {
				lines = append(lines, name+" unset")
				continue
			}
			sum := sha256.Sum256([]byte(value))
			lines = append(lines, name+" sha256="+hex.EncodeToString(sum[:]))
		}
		out := strings.Join(lines, "\n") + "\n"
		fmt.Print(out)
		if err := os.WriteFile("/dev/termination-log", []byte(out), 0o644); err != nil {
			fail("termination message: %v", err)
		}
	case "alloc":
		if len(os.Args) != 3 {
			fail("usage: probe alloc MIB")
		}
		mib, err := strconv.Atoi(os.Args[2])
		if err != nil || mib <= 0 {
			fail("alloc: bad size %q", os.Args[2])
		}
		blocks := make([][]byte, 0, mib)
		for i := 0; i < mib; i++ {
			block := make([]byte, 1<<20)
			for j := 0; j < len(block); j += 4096 {
				block[j] = 1
			}
			blocks = append(blocks, block)
		}
		fmt.Printf("allocated %d MiB\n", len(blocks))
		waitForSignal()
	case "serve":
		if len(os.Args) != 3 {
			fail("usage: probe serve PORT")
		}
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, host) })
		go func() {
			if err := http.ListenAndServe(":"+os.Args[2], nil); err != nil {
				fail("serve: %v", err)
			}
		}()
		waitForSignal()
	case "get":
		if len(os.Args) != 3 {
			fail("usage: probe get URL")
		}
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(os.Args[2])
		if err != nil {
			fail("get: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		out := fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		fmt.Println(out)
		if err := os.WriteFile("/dev/termination-log", []byte(out), 0o644); err != nil {
			fail("termination message: %v", err)
		}
	default:
		fail("unknown command %q", os.Args[1])
	}
}
