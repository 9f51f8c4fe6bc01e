// Oclgrind plugin for ci/gpu_static.sh: how a SIMT GPU would serve each memory instruction of a
// kernel. Work-items are grouped into warps of COAL_WARP (default 32) consecutive local linear ids,
// and the n-th execution of one load or store instruction by the lanes of a warp is one request
// (exact where control flow is warp-uniform). A global request costs the distinct 32-byte sectors it touches,
// at best the distinct bytes it reads over 32; a __local request costs wavefronts, the most
// distinct 4-byte words that fall in one of 32 banks, at best the distinct words over 32 (a
// broadcast is one). At each kernel's end it prints, on stderr, one line per source line and kind
// of access (the instructions of an unrolled loop together):
//   coalesce kernel=K line=L space=global|local op=load|store requests=N share=S measured=M ideal=I
// share: the line's part of the kernel's requests; measured and ideal: per request. L counts
// lines of the program's source as built (the library concatenates its files).
#include "Context.h"
#include "Kernel.h"
#include "KernelInvocation.h"
#include "Memory.h"
#include "Plugin.h"
#include "WorkGroup.h"
#include "WorkItem.h"
#include "common.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <llvm/IR/DebugInfoMetadata.h>
#include <llvm/IR/DebugLoc.h>
#include <llvm/IR/Instruction.h>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace
{

struct Totals { // one instruction over the whole kernel
    bool local = false, store = false;
    size_t requests = 0, measured = 0, ideal = 0;
};

struct Request {            // one instruction's accesses by one warp, n-th time
    std::set<size_t> units; // sectors (global) or words (local)
    std::set<size_t> words; // distinct 4-byte words
    std::map<size_t, std::set<size_t>> banks;
};

class Coalesce : public oclgrind::Plugin
{
  public:
    explicit Coalesce(const oclgrind::Context *context) : oclgrind::Plugin(context)
    {
        const char *w = std::getenv("COAL_WARP");
        warp = w != nullptr && std::atoi(w) > 0 ? (size_t)std::atoi(w) : 32;
    }
    bool isThreadSafe() const override
    {
        return false;
    }

    void kernelBegin(const oclgrind::KernelInvocation *invocation) override
    {
        totals.clear();
        local_size = invocation->getLocalSize();
        kernel = invocation->getKernel()->getName();
    }
    void workGroupBegin(const oclgrind::WorkGroup *) override
    {
        requests.clear();
        executions.clear();
    }
    void memoryLoad(const oclgrind::Memory *memory, const oclgrind::WorkItem *item, size_t address,
                    size_t size) override
    {
        record(memory, item, address, size, false);
    }
    void memoryStore(const oclgrind::Memory *memory, const oclgrind::WorkItem *item, size_t address, size_t size,
                     const uint8_t *) override
    {
        record(memory, item, address, size, true);
    }
    void workGroupComplete(const oclgrind::WorkGroup *) override
    {
        for (const auto &entry : requests) {
            const Request &r = entry.second;
            Totals &t = totals[std::get<0>(entry.first)];
            t.local = std::get<3>(entry.first);
            t.store = std::get<4>(entry.first);
            t.requests++;
            if (t.local) {
                size_t most = 0;
                for (const auto &bank : r.banks)
                    most = std::max(most, bank.second.size());
                t.measured += most;
                t.ideal += std::max<size_t>(1, (r.words.size() + 31) / 32);
            } else {
                t.measured += r.units.size();
                t.ideal += std::max<size_t>(1, (r.words.size() * 4 + 31) / 32);
            }
        }
        requests.clear();
        executions.clear();
    }
    void kernelEnd(const oclgrind::KernelInvocation *) override
    {
        size_t all = 0;
        std::map<std::tuple<unsigned, bool, bool>, Totals> lines;
        for (const auto &entry : totals) {
            const Totals &t = entry.second;
            unsigned line = 0;
            if (const llvm::DebugLoc &loc = entry.first->getDebugLoc())
                line = loc.getLine();
            Totals &sum = lines[std::make_tuple(line, t.local, t.store)];
            sum.local = t.local;
            sum.store = t.store;
            sum.requests += t.requests;
            sum.measured += t.measured;
            sum.ideal += t.ideal;
            all += t.requests;
        }
        std::vector<std::pair<std::tuple<unsigned, bool, bool>, Totals>> rows(lines.begin(), lines.end());
        std::sort(rows.begin(), rows.end(),
                  [](const auto &a, const auto &b) { return a.second.requests > b.second.requests; });
        for (const auto &row : rows) {
            const Totals &t = row.second;
            std::fprintf(stderr,
                         "coalesce kernel=%s line=%u space=%s op=%s requests=%zu share=%.3f measured=%.2f ideal=%.2f\n",
                         kernel.c_str(), std::get<0>(row.first), t.local ? "local" : "global",
                         t.store ? "store" : "load", t.requests, all ? (double)t.requests / all : 0.0,
                         (double)t.measured / t.requests, (double)t.ideal / t.requests);
        }
    }

  private:
    void record(const oclgrind::Memory *memory, const oclgrind::WorkItem *item, size_t address, size_t size, bool store)
    {
        const unsigned space = memory->getAddressSpace();
        if (space != oclgrind::AddrSpaceGlobal && space != oclgrind::AddrSpaceLocal)
            return;
        const bool local = space == oclgrind::AddrSpaceLocal;
        const llvm::Instruction *inst = item->getCurrentInstruction();
        const oclgrind::Size3 id = item->getLocalID();
        const size_t lane = id.x + local_size.x * (id.y + local_size.y * id.z);
        const size_t n = executions[std::make_pair(lane, inst)]++;
        Request &r = requests[std::make_tuple(inst, lane / warp, n, local, store)];
        for (size_t word = address / 4; word * 4 < address + size; word++) {
            r.words.insert(word);
            if (local)
                r.banks[word % 32].insert(word);
        }
        if (!local)
            for (size_t sector = address / 32; sector * 32 < address + size; sector++)
                r.units.insert(sector);
    }

    size_t warp;
    oclgrind::Size3 local_size;
    std::string kernel;
    std::map<const llvm::Instruction *, Totals> totals;
    std::map<std::tuple<const llvm::Instruction *, size_t, size_t, bool, bool>, Request> requests;
    std::map<std::pair<size_t, const llvm::Instruction *>, size_t> executions;
};

Coalesce *instance = nullptr;

} // namespace

extern "C" void initializePlugins(oclgrind::Context *context)
{
    instance = new Coalesce(context);
    context->registerPlugin(instance);
}

extern "C" void releasePlugins(oclgrind::Context *context)
{
    context->unregisterPlugin(instance);
    delete instance;
}
