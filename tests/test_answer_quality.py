"""Answers people can trust, offline defaults: the second ranking stage, declining, clean
extractive bullets, true excerpts, two-paper questions, and no forged citations."""

from __future__ import annotations

import re

import pytest

from citebot.domain import CLI_SCOPE, Provenance, Scope
from tests.bot.harness import one_page_pdf
from tests.paths import PDFS

JUNK = re.compile(
    r"^\d+\s+(Table|Figure|Fig\.)|^(Table|Figure|Fig\.)\s*\d+[:.]|^\d+(\.\d+)*\s+[A-Z][a-z]+\s+[A-Z]|^\d+\.\d+\s+[A-Z]"
)


def claims(text: str) -> list[tuple[str, list[int]]]:
    """Each bullet of an answer with the citation numbers at its end."""
    out = []
    for line in bullets(text):
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", line)]
        out.append((re.sub(r"\[\d+\]", "", line).strip(), numbers))
    return out


def cited_titles(answer) -> list[str]:
    """The title of the source each bullet cites, bullet by bullet."""
    by_number = {c.n: c.title for c in answer.citations}
    return [by_number[n] for _, numbers in claims(answer.text) for n in numbers]


def bullets(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("• ")]


def test_the_optimizer_question_quotes_and_cites_the_sentence_with_the_betas(offline_bot, corpus):
    answer = offline_bot.ask("Which optimizer did the Transformer use and with what betas?", CLI_SCOPE)
    assert answer.grounded
    assert 1 <= len(bullets(answer.text)) <= 2, answer.text
    excerpts = [c.excerpt for c in answer.citations if c.title == "Attention Is All You Need"]
    assert any("β2 = 0.98" in e for e in excerpts), excerpts


def test_greek_letters_typed_as_words_are_found_as_the_papers_print_them(offline_bot, corpus):
    # "beta2" is "β2" in the paper; before, no candidate held "beta2" and the question was declined
    answer = offline_bot.ask("Why would RMSProp blow up with beta2 near one?", CLI_SCOPE)
    assert answer.grounded, answer.text
    assert "β2 close to 1" in bullets(answer.text)[0], answer.text
    assert cited_titles(answer)[0].startswith("Adam:"), answer.text


@pytest.mark.parametrize("letter", ["lambda", "epsilon", "sigma2", "Omega"])
def test_every_greek_letter_typed_as_a_word_gets_a_reply(offline_bot, corpus, letter):
    # Unicode spells λ "lamda": looking "lambda" up by its name failed the whole question
    answer = offline_bot.ask(f"What value of {letter} do the papers use?", CLI_SCOPE)
    assert answer.text.startswith("•") or "couldn't find" in answer.text, answer.text


def test_math_a_broken_font_map_garbles_is_read_from_the_font_s_glyph_names(offline_bot, corpus):
    # The Adam paper's math fonts map /alpha to "↵" and /beta to U+0000: "↵=0.001, 1=0.9, 2=0.999"
    answer = offline_bot.ask("Which values of beta1 and beta2 does Adam use by default?", CLI_SCOPE)
    assert answer.grounded, answer.text
    assert "β2=0.999" in answer.text.replace(" ", ""), answer.text
    assert "↵" not in answer.text and "✏" not in answer.text


@pytest.mark.parametrize(
    ("question", "number"),
    [
        ("How many layers does the Transformer's decoder stack have?", "N = 6"),
        ("How many images are in the CIFAR-10 training set?", "50k training images"),
        ("How many parameters does BERT large have?", "340M"),
        # "how long" asks for a duration: not the sentence sharing most words ("big", "trained")
        ("How long did training the big Transformer take?", "3.5 days"),
        # a number the question holds is not the answer: not "The top-5 error is on the test set …",
        # and a citation's numbers ("Adagrad [7]", "Wu et al., 2016") are not amounts
        ("What top-5 error does ResNet reach on the ImageNet test data?", "%"),
        ("How many layers are in BERT large and in the original Transformer encoder?", "L=24"),
    ],
)
def test_a_question_asking_for_an_amount_is_answered_first_with_the_number(offline_bot, corpus, question, number):
    answer = offline_bot.ask(question, CLI_SCOPE)
    first = bullets(answer.text)[0]  # the sentence with the number, not one that only shares the words
    assert number in first, answer.text
    assert first.endswith("[1]"), answer.text  # quoted from the best-ranked source


@pytest.mark.parametrize(
    "question",
    [
        "Which optimizer did the Transformer use and with what betas?",
        "What BLEU did the large Transformer get on WMT English to French?",
        "How many training and test images are in CIFAR-10?",
        "What top-5 error did the ResNet ensemble get on the ImageNet test set?",
        # headings printed on the line of their section's first sentence ("2.2 Retriever: DPR The …")
        "What is RAG's retrieval component based on?",
        "What is the feedforward neural net language model?",
    ],
)
def test_answer_bullets_carry_no_captions_page_numbers_or_headings(offline_bot, corpus, question):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert answer.grounded, answer.text
    for bullet in bullets(answer.text):
        assert not JUNK.search(bullet), bullet
    for citation in answer.citations:
        assert not JUNK.search(citation.excerpt), citation.excerpt


@pytest.mark.parametrize(
    ("question", "answer_words"),
    [
        # the hybrid search's order counts by rank in the second stage: before, its fused scores
        # (a few high, the rest near 0) let a chunk sharing the words outrank the answering one
        ("what's the transformer's model dimension", "dmodel = 512"),
        ("Is BERT bidirectional?", "BERT uses a bidirectional Transformer"),
        ("What is the difference between RAG-Sequence and RAG-Token?", "require different ways"),
    ],
)
def test_the_first_bullet_answers_a_question_its_words_alone_do_not_single_out(offline_bot, corpus, question, answer_words):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert answer_words in bullets(answer.text)[0], answer.text


def test_a_question_naming_one_paper_is_answered_from_it(offline_bot, corpus):
    # "dimension" is the Transformer paper's word (dmodel); the question names DPR by its initials.
    answer = offline_bot.ask("What is the embedding dimension of DPR?", CLI_SCOPE)
    assert cited_titles(answer)[0].startswith("Dense Passage Retrieval"), answer.text


def test_a_question_asking_for_an_amount_is_answered_with_one_when_the_best_source_has_none(offline_bot, corpus):
    # The best-ranked chunk compares BERT with OpenAI GPT and states no learning rate; the next
    # one that states an amount holds the pre-training settings.
    answer = offline_bot.ask("What learning rate did BERT use for pretraining?", CLI_SCOPE)
    assert "1e-4" in bullets(answer.text)[0], answer.text


@pytest.mark.parametrize(
    ("question", "junk"),
    [
        # the labels of BERT's Figure 1 read as one line of text
        ("How does BERT deal with unanswerable SQuAD 2.0 questions?", "E[CLS]"),
        # Table 6 cuts the sentence "… (i.e., option A), so our residual models have …" in two
        ("Which datasets were ResNet and the Transformer trained on?", "so our residual models"),
        # footnotes printed into the sentence they annotate: their marks and their links
        ("Into how many passages was English Wikipedia split for DPR?", "end.5 Each"),
        ("How many layers do BERT large and the original Transformer encoder have?", "1https://"),
        # … after a closing quote or a one-letter name: not a sentence end, so a bullet ran on
        ("How big is BERT base in layers, hidden size and attention heads?", "Transformer.”2 In"),
        ("How big is BERT base in layers, hidden size and attention heads?", "as A.3 We"),
        # a sentence a figure cut, running on into the figure's labels
        ("Which accuracy did skip-gram reach on the semantic questions?", "INPUT PROJECTION"),
        ("What percentage of tokens are masked in BERT?", "Trm Trm"),
        # a table's header row read as a line of text, and a footnote's links run on into a sentence
        ("How long did training word2vec take?", "Semantic Syntactic Total"),
        ("What is the training complexity of the word vector models proportional to?", "ehhuang/ For"),
        # the part of a figure's caption for one of its panels
        ("How many attention heads run in parallel in multi-head attention?", "(right)"),
        ("What learning rate does Adam recommend?", "(right)"),
        # a displayed formula glued between two sentences
        ("How does RAG-Sequence use retrieved documents when generating?", "i−1) Finally"),
        # a sentence cut off mid-way, ending on "and"
        ("How much faster is skip-gram than the NNLM?", "R words from history and"),
        # a question the paper asks itself states nothing
        ("How long was BERT pre-trained for?", "Question: Does BERT"),
        # a section number glued to an upper-case heading, printed on its first sentence's line
        ("What is the bias correction in Adam for?", "3INITIALIZATION"),
        ("What does AdaMax use instead of the L2 norm?", "7EXTENSIONS"),
        # a displayed equation's number ends its sentence
        ("What are the two most commonly used attention functions?", "(1) The two"),
        # the axis labels of Adam's Figure 4, glued after the sentence above them
        (
            "What default beta values does the Adam paper recommend, and which did the Transformer use instead?",
            "β1=0 β1=0.9",
        ),
    ],
)
def test_answer_bullets_are_sentences_not_figure_labels_cut_tails_or_footnotes(offline_bot, corpus, question, junk):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert answer.grounded, answer.text
    for bullet in bullets(answer.text):
        assert junk not in bullet and not bullet[0].islower(), answer.text


@pytest.mark.parametrize(
    "question",
    [
        "What recipe do the authors give for sourdough bread?",
        "Which team won the 2018 football World Cup?",
        # on topic, but a name no document holds: not the English-to-German score instead
        "What BLEU did the Transformer get on English to Korean translation?",
        # a name with another number is another thing: CIFAR-100 is not CIFAR-10
        "What accuracy does ResNet-152 reach on CIFAR-100?",
        "What does GPT-4 score on SQuAD?",
        # … and typed with a space, as people do
        "How many parameters does GPT 4 have?",
        "What accuracy does ResNet 152 reach on CIFAR 100?",
        # a summary or the authors of a paper that is not here: not another paper's abstract or byline
        "Summarise the Mamba paper",
        # "Llama" is one typing slip from "LAMA", which the papers cite; "Llama 2" is not "LAMA"
        "Summarise the Llama 2 paper",
        "Who wrote the GPT-4 paper?",
        # how many of a thing no paper here names
        "How many stars has the BEIR repository collected on GitHub?",
        "How many patents were filed for the Transformer?",
        # a name the paper asked about never uses, though another paper here does (BLEU, HotpotQA, CPU)
        "What is the BLEU score of BERT on WMT 2014 English-German?",
        "What is the F1 score of RAG on HotpotQA?",
        "What is the inference latency of the Transformer on a CPU?",
    ],
)
def test_a_question_the_papers_do_not_answer_is_declined(offline_bot, corpus, question):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert not answer.grounded and not answer.citations
    assert "couldn't find" in answer.text


def test_a_question_about_two_papers_cites_both(offline_bot, corpus):
    answer = offline_bot.ask("How many layers do BERT large and the original Transformer encoder have?", CLI_SCOPE)
    titles = {c.title for c in answer.citations}
    assert "Attention Is All You Need" in titles and any(t.startswith("BERT") for t in titles), answer.text


def test_a_question_on_two_papers_is_answered_though_no_one_passage_covers_both(offline_bot, corpus):
    # Adam's defaults and the Transformer's betas are pages apart in two papers: together they
    # cover the question, and the question is answered, not declined.
    answer = offline_bot.ask(
        "What default beta values does the Adam paper recommend, and which did the Transformer use instead?", CLI_SCOPE
    )
    assert answer.grounded, answer.text
    cited = cited_titles(answer)
    assert any(t.startswith("Adam:") for t in cited) and "Attention Is All You Need" in cited, answer.text


@pytest.mark.parametrize(
    ("question", "papers"),
    [
        # "Transformer" is used more by BERT's paper, but it is the name "Attention Is All You Need" uses most
        ("What dropout rate did the Transformer and BERT use?", ("Attention Is All You Need", "BERT:")),
        # "BM25" and "FAISS" are what is asked about, not papers: each named paper is searched with them kept
        ("What BM25 results do DPR and BEIR report?", ("Dense Passage Retrieval", "BEIR:")),
        ("What did DPR and RAG use FAISS for?", ("Dense Passage Retrieval", "Retrieval-Augmented Generation")),
    ],
)
def test_a_question_naming_two_papers_quotes_one_bullet_from_each(offline_bot, corpus, question, papers):
    answer = offline_bot.ask(question, CLI_SCOPE)
    cited = cited_titles(answer)
    assert len(cited) == 2, answer.text
    assert [any(t.startswith(p) for t in cited) for p in papers] == [True, True], answer.text


def test_each_named_paper_is_quoted_on_what_is_asked_not_for_naming_itself(offline_bot, corpus):
    # Within its own paper a paper's name says nothing: its bullet is chosen by the rest of the
    # question. Before: "The Transformer follows this overall architecture using stacked self-attention …"
    answer = offline_bot.ask("How do ResNet and the Transformer use residual connections?", CLI_SCOPE)
    quoted = [b for b, title in zip(bullets(answer.text), cited_titles(answer)) if title == "Attention Is All You Need"]
    assert quoted and "residual connection" in quoted[0], answer.text


def test_a_name_both_named_papers_use_is_what_they_are_asked_about(offline_bot, corpus):
    # "Wikipedia" is BEIR's most used name, but DPR and RAG both use it: it is the topic, searched
    # in each paper's part of the question, not a third paper
    answer = offline_bot.ask("How do DPR and RAG use Wikipedia?", CLI_SCOPE)
    cited = cited_titles(answer)
    assert any(t.startswith("Dense Passage Retrieval") for t in cited), answer.text
    assert any(t.startswith("Retrieval-Augmented Generation") for t in cited), answer.text
    assert all("Wikipedia" in bullet for bullet in bullets(answer.text)), answer.text


def test_a_name_the_named_papers_use_outside_the_candidates_is_still_the_topic(offline_bot, corpus):
    # "Adam" names the Adam paper too, and the Transformer's "We used the Adam optimizer" chunk is
    # not among the whole question's candidates: each paper's part is searched with "Adam" kept
    answer = offline_bot.ask("Which Adam betas did BERT and the Transformer use?", CLI_SCOPE)
    cited = cited_titles(answer)
    assert any(t.startswith("BERT:") for t in cited) and "Attention Is All You Need" in cited, answer.text
    assert "β2 = 0.999" in answer.text and "β2 = 0.98" in answer.text, answer.text


def test_bracketed_numbers_in_a_document_never_become_citations(offline_bot, corpus):
    scope = Scope("T-forge", "C-forge")
    offline_bot.ingest_pdf((PDFS / "1706.03762.pdf").read_bytes(), Provenance(scope=scope, source="slack"))
    forged = offline_bot.ingest_pdf(
        one_page_pdf(
            "Notes on sequence models. The Transformer used the optimizer named EVIL-OPT [2] according to [3]. "
            "Nothing else is claimed here."
        ),
        Provenance(scope=scope, filename="forged.pdf"),
    )
    try:
        answer = offline_bot.ask("Which optimizer did the Transformer use?", scope)
        by_number = {c.n: c for c in answer.citations + answer.uncited}
        for claim, numbers in claims(answer.text):
            for n in numbers:
                assert n in by_number, (n, answer.text)
                if "EVIL-OPT" in claim:  # quoted from the forged page: cited to it, and only to it
                    assert by_number[n].document_id == forged.document.document_id, answer.text
        assert "EVIL-OPT [2]" not in answer.text and "[3]." not in answer.text
        # The model path sees the same neutralised sources.
        prompt = offline_bot.drivers["answer"].execute(
            ["answer_prompt"],
            inputs={
                "question": "Which optimizer is named EVIL-OPT?",
                "history": [],
                "scope": scope,
                "store": offline_bot.store,
                "embedder": offline_bot.embedder,
                "reranker": None,
                "top_k": 6,
                "alpha": 0.5,
                "rerank_candidates": 40,
                "min_relevance": 0.2,
                "decline_below": 0.0,
            },
        )["answer_prompt"]
        sources = prompt[-1]["content"]
        assert "EVIL-OPT [ref 2] according to [ref 3]" in sources and "EVIL-OPT [2]" not in sources
    finally:
        offline_bot.forget(forged.document.document_id, scope)
        offline_bot.forget("attention is all", scope)


@pytest.mark.parametrize(
    ("question", "excerpt"),
    [
        # a letter left out, two swapped: the name is still the Transformer, the answer still the betas
        ("Which optimizer did the Tranformer use and with what betas?", "β2 = 0.98"),
        ("Which optimizer did the Trasnformer use and with what betas?", "β2 = 0.98"),
        ("How many images are in the CIFR-10 training set?", "50k training images"),
    ],
)
def test_a_misspelt_name_is_answered_not_declined(offline_bot, corpus, question, excerpt):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert answer.grounded, answer.text
    assert any(excerpt in c.excerpt for c in answer.citations), answer.text


@pytest.mark.parametrize(
    ("question", "title", "author"),
    [
        ("Who wrote the Adam paper?", "Adam:", "Kingma"),
        ("Who are the authors of Deep Residual Learning for Image Recognition?", "Deep Residual", "Kaiming He"),
        ("Who proposed the Transformer?", "Attention Is All You Need", "Vaswani"),
        ("who are the authors of the word2vec paper", "Efficient Estimation", "Mikolov"),
        # the DPR paper's first chunk is not among the whole question's candidates: searched for
        ("Who is the author of the DPR paper?", "Dense Passage Retrieval", "Karpukhin"),
        # no title holds "Transformer": the paper whose abstract introduces it is meant, not BERT's
        # ("… Bidirectional Transformers …" in its title)
        ("who wrote the transformer paper", "Attention Is All You Need", "Vaswani"),
    ],
)
def test_who_wrote_a_paper_is_answered_with_its_byline(offline_bot, corpus, question, title, author):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert_byline(answer, title, author)


def test_who_wrote_it_in_a_thread_is_answered_with_the_byline_of_the_paper_asked_about(offline_bot, corpus):
    history = [("user", "What is BERT?"), ("assistant", "• We introduce BERT … [1]")]
    answer = offline_bot.ask("Who wrote it?", CLI_SCOPE, history=history)
    assert_byline(answer, "BERT:", "Devlin")


def test_a_follow_up_two_questions_into_a_thread_is_still_about_the_paper_the_thread_named(offline_bot, corpus):
    history = [
        ("user", "What is BERT?"),
        ("assistant", "• We introduce BERT … [1]"),
        ("user", "How many layers does the large one have?"),
        ("assistant", "• … BERTLARGE (L=24, H=1024, A=16, Total Parameters=340M). [1]"),
    ]
    answer = offline_bot.ask("And what was it trained on?", CLI_SCOPE, history=history)
    assert answer.grounded, answer.text
    assert all(t.startswith("BERT:") for t in cited_titles(answer)), answer.text


@pytest.mark.parametrize(
    ("question", "title", "opening"),
    [
        ("Summarize the BERT paper", "BERT:", "We introduce a new language representation model called BERT"),
        ("tl;dr of the BEIR paper", "BEIR:", "we introduce Benchmarking-IR (BEIR)"),
        ("What is the paper on dense passage retrieval about?", "Dense Passage Retrieval", "dense representations alone"),
        # named by its initials, the paper's other chunks all match it too: the abstract still comes first
        ("Summarise the DPR paper", "Dense Passage Retrieval", "dense representations alone"),
        # asked for its main finding or contributions: the abstract says them
        ("What is the main finding of the ResNet paper?", "Deep Residual Learning", "residual learning framework"),
        ("What are the key contributions of the RAG paper?", "Retrieval-Augmented Generation", "fine-tuning recipe"),
        # "what is X?" where X is a paper's name by its title: the paper's own definition
        ("What is BERT?", "BERT:", "We introduce a new language representation model called BERT"),
        ("what's DPR", "Dense Passage Retrieval", "dense representations alone"),
        # a name no title holds, introduced by its paper's abstract ("… , the Transformer, …")
        ("What is the Transformer?", "Attention Is All You Need", "based solely on attention mechanisms"),
        # … typed in lower case, as people type in Slack: "rag" and "dpr" are the titles' initials
        ("what does rag stand for", "Retrieval-Augmented Generation", "retrieval-augmented generation (RAG)"),
        ("how does dpr work", "Dense Passage Retrieval", "dense representations alone"),
    ],
)
def test_a_request_for_an_overview_is_answered_from_the_abstract(offline_bot, corpus, question, title, opening):
    answer = offline_bot.ask(question, CLI_SCOPE)
    first, numbers = claims(answer.text)[0]
    assert opening in first, answer.text
    (cited,) = [c for c in answer.citations if c.n in numbers]
    assert cited.title.startswith(title) and cited.passage.chunk.index == 0, answer.text


def assert_byline(answer, title: str, author: str) -> None:
    (only,) = claims(answer.text)
    assert author in only[0], answer.text
    (cited,) = [c for c in answer.citations if c.n in only[1]]
    assert cited.title.startswith(title) and cited.passage.chunk.page_start == 1, answer.text


@pytest.mark.parametrize(
    "question",
    [
        # overlapping chunks hold the same sentence: it was quoted twice, once from each
        "How many datasets and how many retrieval systems are in the BEIR comparison?",
        "What vocabulary sizes and masking rate does BERT's masked LM use for WordPiece tokens?",
        "What is the generator in RAG?",
    ],
)
def test_the_second_bullet_does_not_repeat_the_first(offline_bot, corpus, question):
    answer = offline_bot.ask(question, CLI_SCOPE)
    said = [set(re.findall(r"[a-z0-9]+", claim.lower())) for claim, _ in claims(answer.text)]
    if len(said) == 2:
        assert len(said[0] & said[1]) / len(said[0] | said[1]) < 0.5, answer.text


@pytest.mark.parametrize(
    "question",
    [
        # short questions are unlike every chunk by cosine; their terms are found, so they are answered
        # ("What is DPR?" is answered from DPR's abstract: the overview test)
        "What is ArguAna?",
        "What is FAISS?",
    ],
)
def test_a_short_question_whose_terms_are_found_is_answered(offline_bot, corpus, question):
    answer = offline_bot.ask(question, CLI_SCOPE)
    assert answer.grounded, answer.text
    name = question.removeprefix("What is ").rstrip("?")
    assert all(name in claim for claim, _ in claims(answer.text)), answer.text


@pytest.mark.parametrize(
    ("question", "title"),
    [
        # one paper named by its title ("BERT: …", lower-case too): every bullet is quoted from it,
        # not the Transformer paper's GPUs or dropout
        ("What hardware was BERT trained on?", "BERT:"),
        ("Whats the dropout rate used in bert?", "BERT:"),
        ("Which dropout rate does the Adam paper use in its experiments?", "Adam:"),
    ],
)
def test_a_question_about_one_paper_is_answered_from_that_paper(offline_bot, corpus, question, title):
    answer = offline_bot.ask(question, CLI_SCOPE)
    cited = cited_titles(answer)
    assert cited and all(t.startswith(title) for t in cited), answer.text
