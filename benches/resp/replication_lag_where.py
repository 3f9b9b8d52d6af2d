"""benches/replication_lag_where.sh runs this. Where the replica lag of `ours -> redis replica` sits, sampled every 10 ms during a
redis-benchmark -P 32 SADD load: master offset minus replica offset (lag), and the kernel
queues of the replication connection (ss -tn): the master side's Send-Q (written by our
link, not yet acknowledged by the replica's kernel) and the replica side's Recv-Q (arrived,
not yet read by the redis replica). The rest of the lag (lag - sendq - recvq) is still in
the master process (its link's pending buffer or not yet fed)."""
import socket, subprocess, sys, time, threading, re
def cmd(port,*a):
    s=socket.create_connection(("127.0.0.1",port)); 
    s.sendall(b"*%d\r\n"%len(a)+b"".join(b"$%d\r\n%s\r\n"%(len(x),x) for x in a))
    buf=b""
    while True:
        buf+=s.recv(65536)
        m=re.match(rb"\$(\d+)\r\n",buf)
        if m and len(buf)>=m.end()+int(m.group(1))+2: break
    s.close(); return buf.decode(errors="replace")
def field(t,f):
    m=re.search(f+r":(\d+)",t); return int(m.group(1)) if m else None
def link_addr(mport, rport):
    """The replica's end of the replication connection: its socket to the master's port,
    found through the replica's process id (`ss -p`)."""
    pid = field(cmd(rport, b"INFO", b"server"), "process_id")
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True).stdout
    for l in out.splitlines():
        p = l.split()
        if p[3] == "127.0.0.1:%d" % mport and "pid=%d," % pid in l:
            return p[2]
    return None
def queues(mport, link):
    """Send-Q of the master's end of the replication connection, Recv-Q of the replica's."""
    out=subprocess.run(["ss","-tnH","state","established"],capture_output=True,text=True).stdout
    sendq=recvq=0
    for l in out.splitlines():
        p=l.split()
        rq,sq,loc,peer=int(p[0]),int(p[1]),p[2],p[3]
        if loc=="127.0.0.1:%d"%mport and peer==link:
            sendq=sq
        if loc==link and peer=="127.0.0.1:%d"%mport:
            recvq=rq
    return sendq,recvq
mport,rport,label=int(sys.argv[1]),int(sys.argv[2]),sys.argv[3]
n=sys.argv[4]
samples=[]; stop=False
link=link_addr(mport,rport)
assert link, "no replica link on the master"
def sampler():
    while not stop:
        mo=field(cmd(mport,b"INFO",b"replication"),"master_repl_offset")
        ro=field(cmd(rport,b"INFO",b"replication"),"slave_repl_offset")
        sq,rq=queues(mport,link)
        samples.append((time.time(),mo,ro,sq,rq)); time.sleep(0.01)
t=threading.Thread(target=sampler); t.start()
t0=time.time()
subprocess.run(["redis-benchmark","-p",str(mport),"-c","50","-n",n,"-P","32","-r","1000000","-q","SADD","s","__rand_int__"],capture_output=True)
t1=time.time()
while True:
    mo=field(cmd(mport,b"INFO",b"replication"),"master_repl_offset"); ro=field(cmd(rport,b"INFO",b"replication"),"slave_repl_offset")
    if mo==ro or time.time()-t1>30: break
    time.sleep(0.002)
t2=time.time(); stop=True; t.join()
lags=[(mo-ro,sq,rq) for (_,mo,ro,sq,rq) in samples if mo and ro]
peak=max(lags,key=lambda x:x[0])
during=[x for x in lags]
avg=lambda i: sum(x[i] for x in during)/len(during)
print(f"{label}: load {t1-t0:.2f}s catch-up {1000*(t2-t1):.0f}ms samples {len(lags)} | peak lag {peak[0]} B (Send-Q {peak[1]}, Recv-Q {peak[2]}, in master process {peak[0]-peak[1]-peak[2]}) | mean lag {avg(0):.0f} B: Send-Q {avg(1):.0f}, Recv-Q {avg(2):.0f}, in master {avg(0)-avg(1)-avg(2):.0f}")
