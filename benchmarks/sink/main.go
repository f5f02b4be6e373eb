// A LogService that is never the bottleneck: every call is answered at once with a fixed, successful reply.
// It needs no generated stubs: a codec that passes raw bytes and a handler for any method of any service.
// Built by benchmarks/fast_sink.py from Debian's golang-go and golang-google-grpc-dev (GOPATH mode).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"strings"

	"google.golang.org/grpc"
)

// rawCodec hands the handler the request's bytes and sends the reply's bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = data
	return nil
}
func (rawCodec) String() string { return "proto" }

// Serialized replies: success=true (field 1), and for WriteLog log_id="sink" (field 3); the health
// service's Check answers SERVING (field 1 = 1), which the suite's preflight asks for.
var replies = map[string][]byte{
	"Check":         {0x08, 0x01},
	"WriteLog":      {0x08, 0x01, 0x1a, 0x04, 's', 'i', 'n', 'k'},
	"BatchWriteLog": {0x08, 0x01},
	"QueryLog":      {0x18, 0x01},
}

func answer(_ interface{}, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	var request []byte
	if err := stream.RecvMsg(&request); err != nil {
		return err
	}
	reply := replies[method[strings.LastIndex(method, "/")+1:]]
	return stream.SendMsg(&reply)
}

func main() {
	address := flag.String("address", "127.0.0.1:0", "where to listen (loopback)")
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(listener.Addr().String())
	server := grpc.NewServer(grpc.CustomCodec(rawCodec{}), grpc.UnknownServiceHandler(answer))
	log.Fatal(server.Serve(listener))
}
