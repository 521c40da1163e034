// The Go side of bench/c100k.sh: an echo server with a goroutine per
// connection, as a Go programmer writes one (a read buffer per connection,
// Read then Write until the client closes), compared with examples/
// echo_server in the same run.
//
//	c100k_echo_go [-port N]
//
// Listens on 127.0.0.1 (port 0 picks a free one) and prints "listening on
// 127.0.0.1:PORT" once it accepts. Exits on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// The same buffer size as examples/echo_server.
const echoBuf = 16384

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, echoBuf)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", 0, "port to listen on (0: a free one)")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "c100k_echo_go:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go echo(c)
	}
}
